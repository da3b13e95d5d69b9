-- Totals over the range: billed cost, seat fees, usage billed, and the share that maps to no one (Unattributed).
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
),
selected AS (
  SELECT *
  FROM allocation
  WHERE TRUE
    [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
    [[AND month <= CAST({{date_to}} AS DATE)]]
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
    [[AND tool = {{tool}}]]
)
SELECT
  COALESCE(SUM(amount_usd), 0) AS total_usd,
  COALESCE(SUM(IF(cost_kind = 'seat_fee', amount_usd, 0)), 0) AS seat_fee_usd,
  COALESCE(SUM(IF(cost_kind = 'usage_billed', amount_usd, 0)), 0) AS usage_billed_usd,
  COALESCE(SUM(IF(team = 'Unattributed', amount_usd, 0)), 0) AS unattributed_usd,
  SAFE_DIVIDE(
    CAST(SUM(IF(team = 'Unattributed', amount_usd, 0)) AS FLOAT64), CAST(SUM(amount_usd) AS FLOAT64)
  ) AS unattributed_share
FROM selected
