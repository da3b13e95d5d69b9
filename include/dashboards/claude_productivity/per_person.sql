-- Claude Code per person (or API key) over the range: activity, acceptance, tokens and estimated cost.
SELECT
  COALESCE(name, email, api_key_name) AS person,
  team,
  COUNTIF(is_active) AS active_days,
  SUM(sessions) AS sessions,
  SUM(lines_added) AS lines_added,
  SUM(commits) AS commits,
  SUM(pull_requests) AS pull_requests,
  SAFE_DIVIDE(SUM(accepts), SUM(accepts) + SUM(rejects)) AS acceptance_rate,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(estimated_cost_usd) AS estimated_cost_usd
FROM marts.daily_tool_usage
WHERE tool = 'claude_code'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY person, team
ORDER BY estimated_cost_usd DESC, person, team
