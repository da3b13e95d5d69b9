-- Cursor per team over the range: people active, requests, tabs and lines accepted, acceptance rates.
SELECT
  team,
  cost_center,
  COUNT(DISTINCT IF(is_active, email, NULL)) AS active_users,
  SUM(requests) AS requests,
  SUM(tabs_shown) AS tabs_shown,
  SUM(tabs_accepted) AS tabs_accepted,
  SAFE_DIVIDE(SUM(tabs_accepted), SUM(tabs_shown)) AS tab_acceptance_rate,
  SUM(lines_added) AS lines_added,
  SUM(lines_accepted) AS lines_accepted,
  SAFE_DIVIDE(SUM(lines_accepted), SUM(lines_added)) AS line_acceptance_rate,
  SAFE_DIVIDE(SUM(accepts), SUM(accepts) + SUM(rejects)) AS suggestion_acceptance_rate
FROM marts.daily_tool_usage
WHERE tool = 'cursor'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY team, cost_center
ORDER BY active_users DESC, team, cost_center
