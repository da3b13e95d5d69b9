-- The executive summary of one month (marts.exec_monthly with the unattributed amount and the reconciliation verdict), for make run and quick checks.
-- params: month DATE
WITH
unattributed AS (
  SELECT SUM(amount_usd) AS unattributed_usd
  FROM marts.monthly_cost_allocation
  WHERE month = @month AND team = 'Unattributed'
),
checks AS (
  -- The latest verdict of each reconciliation check of the month.
  SELECT status
  FROM ops.dq_results
  WHERE suite = 'reconciliation' AND month = @month
  QUALIFY ROW_NUMBER() OVER (PARTITION BY check_name ORDER BY checked_at DESC) = 1
)
SELECT
  e.month,
  e.total_cost_usd,
  e.cursor_cost_usd,
  e.claude_code_cost_usd,
  e.claude_ai_cost_usd,
  u.unattributed_usd,
  e.active_users,
  e.seats,
  e.adoption_rate,
  e.seat_adoption_rate,
  e.cost_per_active_user_usd,
  e.cost_change_pct,
  e.projected_month_end_cost_usd,
  e.is_partial_month,
  e.data_through_date,
  (SELECT COUNTIF(status = 'passed') FROM checks) AS reconciliation_passed,
  (SELECT COUNTIF(status = 'failed') FROM checks) AS reconciliation_failed
FROM marts.exec_monthly AS e
CROSS JOIN unattributed AS u
WHERE e.month = @month
