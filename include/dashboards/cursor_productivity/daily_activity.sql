-- Cursor per UTC day: active users, requests, tabs and lines accepted, acceptance; NULL (a gap) on missing days.
WITH coverage AS (
  SELECT coverage_date AS usage_date, status
  FROM marts.data_freshness
  WHERE source = 'cursor_daily_usage'
),
usage AS (
  SELECT *
  FROM marts.daily_tool_usage
  WHERE tool = 'cursor'
),
daily AS (
  SELECT
    usage_date,
    COUNT(DISTINCT IF(is_active, email, NULL)) AS active_users,
    SUM(requests) AS requests,
    SUM(tabs_accepted) AS tabs_accepted,
    SUM(lines_accepted) AS lines_accepted,
    SAFE_DIVIDE(SUM(tabs_accepted), SUM(tabs_shown)) AS tab_acceptance_rate,
    SAFE_DIVIDE(SUM(lines_accepted), SUM(lines_added)) AS line_acceptance_rate,
    SAFE_DIVIDE(SUM(accepts), SUM(accepts) + SUM(rejects)) AS suggestion_acceptance_rate
  FROM usage
  WHERE TRUE
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
  GROUP BY usage_date
),
days AS (
  SELECT usage_date FROM coverage
  UNION DISTINCT
  SELECT usage_date FROM usage
),
joined AS (
  SELECT
    days.usage_date,
    COALESCE(coverage.status, 'unchecked') AS coverage,
    -- Missing data is a gap, never a zero: a day the source is missing for, with no rows, has no value.
    coverage.status = 'missing' AND daily.usage_date IS NULL AS is_gap,
    daily.active_users,
    daily.requests,
    daily.tabs_accepted,
    daily.lines_accepted,
    daily.tab_acceptance_rate,
    daily.line_acceptance_rate,
    daily.suggestion_acceptance_rate
  FROM days
  LEFT JOIN coverage ON coverage.usage_date = days.usage_date
  LEFT JOIN daily ON daily.usage_date = days.usage_date
)
SELECT
  usage_date,
  coverage,
  IF(is_gap, NULL, COALESCE(active_users, 0)) AS active_users,
  IF(is_gap, NULL, COALESCE(requests, 0)) AS requests,
  IF(is_gap, NULL, COALESCE(tabs_accepted, 0)) AS tabs_accepted,
  IF(is_gap, NULL, COALESCE(lines_accepted, 0)) AS lines_accepted,
  tab_acceptance_rate,
  line_acceptance_rate,
  suggestion_acceptance_rate
FROM joined
WHERE TRUE
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
ORDER BY usage_date
