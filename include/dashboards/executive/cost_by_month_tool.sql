-- Billed cost per month and tool (marts.monthly_cost_allocation), for the teams and cost centres selected.
WITH allocation AS (
  SELECT
    month,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    tool,
    team,
    cost_center,
    amount_usd
  FROM marts.monthly_cost_allocation
)
SELECT
  month,
  tool,
  SUM(amount_usd) AS amount_usd
FROM allocation
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND team = {{team}}]]
  [[AND cost_center = {{cost_center}}]]
  [[AND tool = {{tool}}]]
GROUP BY month, tool
ORDER BY month, tool
