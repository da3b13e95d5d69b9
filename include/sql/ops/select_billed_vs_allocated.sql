-- Per tool, one month's billed totals computed straight from raw next to what marts.monthly_cost_allocation allocated, for the reconciliation checks.
-- params: month_start DATE, month_end DATE
-- billed_usd: the vendor-billed usage of the month, by the rules of select_monthly_cost_allocation.sql
-- (Cursor Usage-based charges, Anthropic cost-report rows of platform 'claude_code', the net spend of the
-- claude.ai export covering the month); estimated_usd: the Claude Code estimates of API-billed usage;
-- seat_cost_usd: seats x price from marts.seat_utilization. Written independently of the allocation SQL
-- so the check compares two computations, not one with itself.
WITH
ai_period AS (
  SELECT period_start, period_end
  FROM raw.claude_ai_usage
  WHERE period_start BETWEEN @month_start AND @month_end AND period_end <= @month_end
  GROUP BY period_start, period_end
  QUALIFY ROW_NUMBER() OVER (ORDER BY period_end DESC, period_start) = 1
),
billed AS (
  SELECT 'cursor' AS tool, SUM(charged_usd) AS billed_usd, CAST(NULL AS NUMERIC) AS estimated_usd
  FROM raw.cursor_usage_events
  WHERE event_date BETWEEN @month_start AND @month_end AND kind = 'Usage-based' AND COALESCE(is_chargeable, TRUE)
  UNION ALL
  SELECT 'claude_code' AS tool,
    (SELECT SUM(amount_usd) FROM raw.anthropic_costs
     WHERE cost_date BETWEEN @month_start AND @month_end AND platform = 'claude_code') AS billed_usd,
    (SELECT SUM(estimated_cost_usd) FROM raw.claude_code_usage
     WHERE usage_date BETWEEN @month_start AND @month_end AND customer_type = 'api') AS estimated_usd
  UNION ALL
  SELECT 'claude_ai' AS tool, SUM(u.net_spend_usd) AS billed_usd, CAST(NULL AS NUMERIC) AS estimated_usd
  FROM raw.claude_ai_usage AS u
  JOIN ai_period AS p
    ON p.period_start = u.period_start AND p.period_end = u.period_end
),
allocated AS (
  SELECT
    tool,
    SUM(IF(cost_kind = 'usage_billed', amount_usd, 0)) AS allocated_usd,
    SUM(IF(cost_kind = 'seat_fee', amount_usd, 0)) AS seat_fee_usd
  FROM marts.monthly_cost_allocation
  WHERE month = @month_start
  GROUP BY tool
),
seats AS (
  SELECT tool, seat_cost_usd FROM marts.seat_utilization WHERE month = @month_start
)
SELECT
  b.tool,
  b.billed_usd,
  COALESCE(a.allocated_usd, 0) AS allocated_usd,
  b.estimated_usd,
  s.seat_cost_usd,
  COALESCE(a.seat_fee_usd, 0) AS seat_fee_usd
FROM billed AS b
LEFT JOIN allocated AS a
  ON a.tool = b.tool
LEFT JOIN seats AS s
  ON s.tool = b.tool
ORDER BY b.tool
