-- Rows of marts.seat_utilization for one month: per tool with seat prices, seats paid, active, idle and what the idle seats cost.
-- params: month_start DATE, month_end DATE
-- Seats and prices as in select_monthly_cost_allocation.sql (the price card row in effect on the month's
-- first day; NULL seats = the roster). Active = distinct people with activity on the tool in the month:
-- Cursor is_active days; claude.ai requests in the month's export or Claude Code sessions through a
-- claude.ai seat (customer_type 'subscription'); Claude Code sessions of people. The seat price is the
-- seat-weighted average, rounded half up to the nano-dollar (exact with one plan).
WITH
prices AS (
  SELECT tool, plan, monthly_price_usd, seats
  FROM ref.seat_prices
  WHERE (valid_from IS NULL OR valid_from <= @month_end) AND (valid_to IS NULL OR valid_to >= @month_start)
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY tool, plan
    ORDER BY
      IF(COALESCE(valid_from, DATE '0001-01-01') <= @month_start, 0, 1),
      IF(COALESCE(valid_from, DATE '0001-01-01') <= @month_start, COALESCE(valid_from, DATE '0001-01-01'), NULL) DESC,
      valid_from
  ) = 1
),
ai_period AS (
  SELECT period_start, period_end
  FROM raw.claude_ai_usage
  WHERE period_start BETWEEN @month_start AND @month_end AND period_end <= @month_end
  GROUP BY period_start, period_end
  QUALIFY ROW_NUMBER() OVER (ORDER BY period_end DESC, period_start) = 1
),
ai_rows AS (
  SELECT u.email, u.total_requests
  FROM raw.claude_ai_usage AS u
  JOIN ai_period AS p
    ON p.period_start = u.period_start AND p.period_end = u.period_end
  WHERE u.email IS NOT NULL
),
roster AS (
  SELECT 'cursor' AS tool, email FROM raw.cursor_daily_usage WHERE usage_date BETWEEN @month_start AND @month_end
  UNION DISTINCT
  SELECT 'claude_ai' AS tool, email FROM ai_rows
  UNION DISTINCT
  SELECT IF(customer_type = 'subscription', 'claude_ai', 'claude_code') AS tool, actor_id AS email
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND actor_type = 'user_actor'
),
active AS (
  SELECT 'cursor' AS tool, email
  FROM raw.cursor_daily_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND is_active
  UNION DISTINCT
  SELECT 'claude_ai' AS tool, email FROM ai_rows WHERE COALESCE(total_requests, 0) > 0
  UNION DISTINCT
  SELECT IF(customer_type = 'subscription', 'claude_ai', 'claude_code') AS tool, actor_id AS email
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND actor_type = 'user_actor' AND COALESCE(num_sessions, 0) > 0
),
counts AS (
  SELECT
    p.tool,
    SUM(CAST(p.monthly_price_usd * 1000000000 AS INT64) * COALESCE(p.seats, r.holders, 0)) AS cost_nano,
    SUM(COALESCE(p.seats, r.holders, 0)) AS seats_paid,
    ANY_VALUE(COALESCE(a.active, 0)) AS seats_active
  FROM prices AS p
  LEFT JOIN (SELECT tool, COUNT(*) AS holders FROM roster GROUP BY tool) AS r
    ON r.tool = p.tool
  LEFT JOIN (SELECT tool, COUNT(*) AS active FROM active GROUP BY tool) AS a
    ON a.tool = p.tool
  GROUP BY p.tool
),
priced AS (
  SELECT
    tool,
    seats_paid,
    seats_active,
    GREATEST(seats_paid - seats_active, 0) AS seats_idle,
    cost_nano,
    IF(seats_paid > 0, (DIV((2 * cost_nano + seats_paid), (2 * seats_paid))), NULL) AS price_nano  -- parentheses: see the allocation SQL
  FROM counts
)
SELECT
  @month_start AS month,
  tool,
  seats_paid,
  seats_active,
  seats_idle,
  CAST(CAST(price_nano AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC) AS seat_price_usd,
  CAST(CAST(cost_nano AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC) AS seat_cost_usd,
  CAST(CAST(price_nano * seats_idle AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC) AS idle_cost_usd
FROM priced
ORDER BY tool
