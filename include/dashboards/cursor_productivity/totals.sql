-- Cursor over the range: people active, requests, tab completions and lines accepted, acceptance rates.
WITH usage AS (
  SELECT *
  FROM marts.daily_tool_usage
  WHERE tool = 'cursor'
    [[AND usage_date >= CAST({{date_from}} AS DATE)]]
    [[AND usage_date <= CAST({{date_to}} AS DATE)]]
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
)
SELECT
  COUNT(DISTINCT IF(is_active, email, NULL)) AS active_users,
  COALESCE(SUM(requests), 0) AS requests,
  COALESCE(SUM(tabs_accepted), 0) AS tabs_accepted,
  COALESCE(SUM(lines_accepted), 0) AS lines_accepted,
  SAFE_DIVIDE(SUM(tabs_accepted), SUM(tabs_shown)) AS tab_acceptance_rate,
  SAFE_DIVIDE(SUM(accepts), SUM(accepts) + SUM(rejects)) AS suggestion_acceptance_rate
FROM usage
