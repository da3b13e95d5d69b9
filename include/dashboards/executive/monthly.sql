-- Month by month, organisation-wide: billed cost by tool, users, adoption, cost per user, change, projection.
WITH monthly AS (
  SELECT
    *,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day
  FROM marts.exec_monthly
)
SELECT
  month,
  IF(is_partial_month, 'partial', 'complete') AS month_status,
  data_through_date,
  total_cost_usd,
  cursor_cost_usd,
  claude_code_cost_usd,
  claude_ai_cost_usd,
  active_users,
  seats,
  adoption_rate,
  cost_per_active_user_usd,
  cost_change_pct,
  projected_month_end_cost_usd
FROM monthly
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
ORDER BY month
