-- Unattributed spend by API key and person: what needs an owner in the API-key owners tab of the Sheet.
WITH allocation AS (
  SELECT
    month,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    tool,
    cost_kind,
    team,
    email,
    api_key_id,
    api_key_name,
    allocation_basis,
    amount_usd
  FROM marts.monthly_cost_allocation
)
SELECT
  month,
  tool,
  COALESCE(api_key_id, '(no key id)') AS api_key_id,
  COALESCE(api_key_name, '(no key name)') AS api_key_name,
  COALESCE(email, '(no person)') AS email,
  cost_kind,
  allocation_basis,
  SUM(amount_usd) AS amount_usd
FROM allocation
WHERE team = 'Unattributed'
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
  [[AND tool = {{tool}}]]
GROUP BY month, tool, api_key_id, api_key_name, email, cost_kind, allocation_basis
ORDER BY month DESC, amount_usd DESC, api_key_id, email
