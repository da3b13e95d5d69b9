-- Cost of idle seats over the range (seats paid for but unused), all tools or the one selected.
WITH seats AS (
  SELECT
    *,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day
  FROM marts.seat_utilization
)
SELECT
  COALESCE(SUM(idle_cost_usd), 0) AS idle_cost_usd,
  COALESCE(SUM(seats_idle), 0) AS idle_seat_months
FROM seats
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND tool = {{tool}}]]
