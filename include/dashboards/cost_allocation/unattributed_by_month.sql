-- Spend that maps to no one (team Unattributed) per month and tool, and its share of the tool's bill.
WITH allocation AS (
  SELECT
    month,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    tool,
    team,
    amount_usd
  FROM marts.monthly_cost_allocation
)
SELECT
  month,
  tool,
  SUM(IF(team = 'Unattributed', amount_usd, 0)) AS unattributed_usd,
  SUM(amount_usd) AS total_usd,
  SAFE_DIVIDE(
    CAST(SUM(IF(team = 'Unattributed', amount_usd, 0)) AS FLOAT64), CAST(SUM(amount_usd) AS FLOAT64)
  ) AS unattributed_share
FROM allocation
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND tool = {{tool}}]]
GROUP BY month, tool
ORDER BY month, tool
