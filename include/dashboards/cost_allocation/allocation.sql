-- Billed cost per month, team, cost centre and tool, split into seat fees and usage billed by the vendor.
WITH allocation AS (
  SELECT
    month,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    tool,
    cost_kind,
    team,
    cost_center,
    amount_usd
  FROM marts.monthly_cost_allocation
)
SELECT
  month,
  team,
  cost_center,
  tool,
  SUM(IF(cost_kind = 'seat_fee', amount_usd, 0)) AS seat_fee_usd,
  SUM(IF(cost_kind = 'usage_billed', amount_usd, 0)) AS usage_billed_usd,
  SUM(amount_usd) AS total_usd
FROM allocation
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
  [[AND tool = {{tool}}]]
GROUP BY month, team, cost_center, tool
ORDER BY month, team, cost_center, tool
