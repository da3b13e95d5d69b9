-- Claude Code per UTC day: active people, sessions, lines, commits, PRs; NULL (a gap) on missing days.
WITH coverage AS (
  SELECT coverage_date AS usage_date, status
  FROM marts.data_freshness
  WHERE source = 'claude_code_usage'
),
usage AS (
  SELECT *
  FROM marts.daily_tool_usage
  WHERE tool = 'claude_code'
),
daily AS (
  SELECT
    usage_date,
    COUNT(DISTINCT IF(is_active, COALESCE(email, api_key_name), NULL)) AS active_people,
    SUM(sessions) AS sessions,
    SUM(lines_added) AS lines_added,
    SUM(commits) AS commits,
    SUM(pull_requests) AS pull_requests
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
    daily.active_people,
    daily.sessions,
    daily.lines_added,
    daily.commits,
    daily.pull_requests
  FROM days
  LEFT JOIN coverage ON coverage.usage_date = days.usage_date
  LEFT JOIN daily ON daily.usage_date = days.usage_date
)
SELECT
  usage_date,
  coverage,
  IF(is_gap, NULL, COALESCE(active_people, 0)) AS active_people,
  IF(is_gap, NULL, COALESCE(sessions, 0)) AS sessions,
  IF(is_gap, NULL, COALESCE(lines_added, 0)) AS lines_added,
  IF(is_gap, NULL, COALESCE(commits, 0)) AS commits,
  IF(is_gap, NULL, COALESCE(pull_requests, 0)) AS pull_requests
FROM joined
WHERE TRUE
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
ORDER BY usage_date
