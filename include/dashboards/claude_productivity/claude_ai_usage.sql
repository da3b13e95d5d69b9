-- claude.ai per month: people active, requests, tokens, and the billed claude.ai cost of the same people.
WITH usage AS (
  SELECT
    DATE_TRUNC(usage_date, MONTH) AS month,
    email,
    is_active,
    requests,
    input_tokens,
    output_tokens,
    team,
    cost_center
  FROM marts.daily_tool_usage
  WHERE tool = 'claude_ai'
),
usage_by_month AS (
  SELECT
    month,
    COUNT(DISTINCT IF(is_active, email, NULL)) AS active_people,
    SUM(requests) AS requests,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens
  FROM usage
  WHERE TRUE
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
  GROUP BY month
),
billed AS (
  SELECT month, SUM(amount_usd) AS billed_usd
  FROM marts.monthly_cost_allocation
  WHERE tool = 'claude_ai'
    [[AND team = {{team}}]]
    [[AND cost_center = {{cost_center}}]]
  GROUP BY month
),
months AS (
  SELECT month FROM usage_by_month
  UNION DISTINCT
  SELECT month FROM billed
),
joined AS (
  SELECT
    months.month,
    DATE_SUB(DATE_ADD(months.month, INTERVAL 1 MONTH), INTERVAL 1 DAY) AS month_last_day,
    usage_by_month.active_people,
    usage_by_month.requests,
    usage_by_month.input_tokens,
    usage_by_month.output_tokens,
    billed.billed_usd
  FROM months
  LEFT JOIN usage_by_month ON usage_by_month.month = months.month
  LEFT JOIN billed ON billed.month = months.month
)
SELECT
  month,
  active_people,
  requests,
  input_tokens,
  output_tokens,
  billed_usd
FROM joined
WHERE TRUE
  [[AND month_last_day >= CAST({{date_from}} AS DATE)]]
  [[AND month <= CAST({{date_to}} AS DATE)]]
ORDER BY month
