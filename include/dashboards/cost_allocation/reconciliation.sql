-- Reconciliation of the ledger with what the vendors billed, per month, tool and check (latest result).
WITH checks AS (
  SELECT
    *,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day
  FROM marts.reconciliation_status
)
SELECT
  month,
  tool,
  check_name,
  status,
  level,
  billed_usd,
  allocated_usd,
  difference_usd,
  description,
  checked_at
FROM checks
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND tool = {{tool}}]]
ORDER BY month DESC, tool, check_name
