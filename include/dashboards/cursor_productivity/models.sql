-- Cursor models: people using each model, requests and tokens (requests and tokens need usage events).
SELECT
  item AS model,
  COUNT(DISTINCT email) AS people,
  SUM(requests) AS requests,
  SUM(input_tokens) AS input_tokens,
  SUM(output_tokens) AS output_tokens
FROM marts.daily_usage_breakdown
WHERE tool = 'cursor'
  AND breakdown = 'model'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY item
ORDER BY people DESC, model
