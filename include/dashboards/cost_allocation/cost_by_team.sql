-- Billed cost per team and tool over the range, largest teams first.
WITH allocation AS (
  SELECT
    month,
    DATE_SUB(DATE_ADD(month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    tool,
    team,
    cost_center,
    amount_usd
  FROM marts.monthly_cost_allocation
),
per_team AS (
  SELECT team, tool, SUM(amount_usd) AS amount_usd
  FROM allocation
  WHERE TRUE
    [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
    [[AND month <= CAST({{date_to}} AS DATE)]]
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
    [[AND tool = {{tool}}]]
  GROUP BY team, tool
),
ranked AS (
  SELECT team, tool, amount_usd, SUM(amount_usd) OVER (PARTITION BY team) AS team_total_usd
  FROM per_team
)
SELECT
  team,
  tool,
  amount_usd
FROM ranked
ORDER BY team_total_usd DESC, team, tool
