-- The latest month in the range, organisation-wide: cost, projection, users, adoption, change (marts.exec_monthly).
WITH monthly AS (
  SELECT
    *,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day
  FROM marts.exec_monthly
)
SELECT
  month,
  is_partial_month,
  data_through_date,
  total_cost_usd,
  projected_month_end_cost_usd,
  active_users,
  adoption_rate,
  cost_per_active_user_usd,
  cost_change_pct
FROM monthly
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
ORDER BY month DESC
LIMIT 1
