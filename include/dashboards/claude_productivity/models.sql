-- Claude Code models over the range: people, tokens and the vendor's estimated cost (not a billed amount).
SELECT
  item AS model,
  COUNT(DISTINCT COALESCE(email, api_key_name)) AS people,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(estimated_cost_usd) AS estimated_cost_usd
FROM marts.daily_usage_breakdown
WHERE tool = 'claude_code'
  AND breakdown = 'model'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY item
ORDER BY estimated_cost_usd DESC, model
