-- Seats paid, active and idle per month and tool, and what the idle seats cost (marts.seat_utilization).
WITH seats AS (
  SELECT
    *,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day
  FROM marts.seat_utilization
)
SELECT
  month,
  tool,
  seats_paid,
  seats_active,
  seats_idle,
  seat_price_usd,
  seat_cost_usd,
  idle_cost_usd
FROM seats
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND tool = {{tool}}]]
ORDER BY month, tool
