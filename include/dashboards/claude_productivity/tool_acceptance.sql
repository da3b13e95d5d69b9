-- Claude Code suggestions accepted and rejected per editing tool (Edit, MultiEdit, Write, NotebookEdit).
SELECT
  item AS editing_tool,
  SUM(accepted) AS accepted,
  SUM(rejected) AS rejected,
  SAFE_DIVIDE(SUM(accepted), SUM(accepted) + SUM(rejected)) AS acceptance_rate
FROM marts.daily_usage_breakdown
WHERE tool = 'claude_code'
  AND breakdown = 'tool_action'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY item
ORDER BY editing_tool
