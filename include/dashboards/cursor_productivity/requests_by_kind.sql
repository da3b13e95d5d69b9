-- Cursor requests by feature (composer, chat, agent, Cmd+K, Bugbot) over the range.
SELECT
  item AS request_kind,
  SUM(requests) AS requests,
  COUNT(DISTINCT email) AS people
FROM marts.daily_usage_breakdown
WHERE tool = 'cursor'
  AND breakdown = 'request_kind'
  [[AND usage_date >= CAST({{date_from}} AS DATE)]]
  [[AND usage_date <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
GROUP BY item
ORDER BY requests DESC, request_kind
