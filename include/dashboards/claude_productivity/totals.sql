-- Claude Code over the range: people active, sessions, lines, commits, pull requests, estimated cost.
WITH usage AS (
  SELECT *
  FROM marts.daily_tool_usage
  WHERE tool = 'claude_code'
    [[AND usage_date >= CAST({{date_from}} AS DATE)]]
    [[AND usage_date <= CAST({{date_to}} AS DATE)]]
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
)
SELECT
  COUNT(DISTINCT IF(is_active, COALESCE(email, api_key_name), NULL)) AS active_people,
  COALESCE(SUM(sessions), 0) AS sessions,
  COALESCE(SUM(lines_added), 0) AS lines_added,
  COALESCE(SUM(commits), 0) AS commits,
  COALESCE(SUM(pull_requests), 0) AS pull_requests,
  COALESCE(SUM(estimated_cost_usd), 0) AS estimated_cost_usd,
  SAFE_DIVIDE(SUM(accepts), SUM(accepts) + SUM(rejects)) AS acceptance_rate
FROM usage
