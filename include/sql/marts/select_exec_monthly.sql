-- The row of marts.exec_monthly for one month: billed cost in all and per tool, active users, adoption, cost per active user, change on the previous month and the month-end projection.
-- params: month_start DATE, month_end DATE, as_of_date DATE, sources ARRAY<STRING>
-- Reads the month's rows of the other marts (refresh them first), the previous month's exec row, the
-- claude.ai export of the month, ref.people and ops.source_coverage of `sources` (the raw tables that
-- feed the marts). data_through_date is the day before the first day of the month any of those sources
-- misses, else the last day all of them have. The projection extrapolates usage linearly from
-- data_through_date to the month's end and adds the seat fees once (they are monthly, not daily).
-- Ratios of money are rounded half up to the nano-dollar in integer arithmetic (exact on both engines);
-- DIV operands stay in parentheses (sqlglot writes DIV(a + b, c) for DuckDB as a + b // c).
WITH
alloc AS (
  SELECT
    CAST(COALESCE(SUM(amount_usd), 0) * 1000000000 AS INT64) AS total_nano,
    CAST(COALESCE(SUM(IF(cost_kind = 'usage_billed', amount_usd, 0)), 0) * 1000000000 AS INT64) AS usage_nano,
    SUM(IF(tool = 'cursor', amount_usd, NULL)) AS cursor_cost_usd,
    SUM(IF(tool = 'claude_code', amount_usd, NULL)) AS claude_code_cost_usd,
    SUM(IF(tool = 'claude_ai', amount_usd, NULL)) AS claude_ai_cost_usd
  FROM marts.monthly_cost_allocation
  WHERE month = @month_start
),
seats AS (
  SELECT SUM(seats_paid) AS seats, SUM(seats_active) AS seats_active
  FROM marts.seat_utilization
  WHERE month = @month_start
),
ai_period AS (
  SELECT period_start, period_end
  FROM raw.claude_ai_usage
  WHERE period_start BETWEEN @month_start AND @month_end AND period_end <= @month_end
  GROUP BY period_start, period_end
  QUALIFY ROW_NUMBER() OVER (ORDER BY period_end DESC, period_start) = 1
),
active AS (
  SELECT COALESCE(email, owner_email) AS email
  FROM marts.daily_tool_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND is_active AND COALESCE(email, owner_email) IS NOT NULL
  UNION DISTINCT
  SELECT u.email
  FROM raw.claude_ai_usage AS u
  JOIN ai_period AS p
    ON p.period_start = u.period_start AND p.period_end = u.period_end
  WHERE u.email IS NOT NULL AND COALESCE(u.total_requests, 0) > 0
),
directory AS (
  SELECT DISTINCT email
  FROM ref.people
  WHERE (valid_from IS NULL OR valid_from <= @month_end) AND (valid_to IS NULL OR valid_to >= @month_start)
),
users AS (
  SELECT
    (SELECT COUNT(*) FROM active) AS active_users,
    (SELECT COUNT(*) FROM directory) AS people,
    (SELECT COUNT(*) FROM active AS a JOIN directory AS d ON d.email = a.email) AS active_people
),
previous AS (
  SELECT total_cost_usd
  FROM marts.exec_monthly
  WHERE month = DATE_SUB(@month_start, INTERVAL 1 MONTH)
),
coverage AS (
  SELECT
    source,
    MIN(IF(status = 'missing', coverage_date, NULL)) AS first_missing,
    MAX(IF(status != 'missing', coverage_date, NULL)) AS last_covered,
    COUNTIF(status != 'final') AS not_final
  FROM ops.source_coverage
  WHERE coverage_date BETWEEN @month_start AND @month_end AND source IN UNNEST(@sources)
  GROUP BY source
),
through AS (
  SELECT
    MIN(IF(first_missing IS NULL, last_covered, LEAST(DATE_SUB(first_missing, INTERVAL 1 DAY), COALESCE(last_covered, first_missing))))
      AS data_through_date,
    COALESCE(SUM(not_final), 0) AS not_final,
    COUNT(*) AS sources
  FROM coverage
),
facts AS (
  SELECT
    a.*,
    s.seats,
    s.seats_active,
    u.active_users,
    u.people,
    u.active_people,
    (SELECT total_cost_usd FROM previous) AS previous_total_usd,
    IF(t.data_through_date < @month_start, NULL, t.data_through_date) AS data_through_date,
    @month_end >= @as_of_date OR t.sources = 0 OR t.data_through_date IS NULL
      OR t.data_through_date < @month_end OR t.not_final > 0 AS is_partial_month,
    DATE_DIFF(@month_end, @month_start, DAY) + 1 AS days_in_month
  FROM alloc AS a
  CROSS JOIN seats AS s
  CROSS JOIN users AS u
  CROSS JOIN through AS t
)
SELECT
  @month_start AS month,
  CAST(CAST(total_nano AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC) AS total_cost_usd,
  cursor_cost_usd,
  claude_code_cost_usd,
  claude_ai_cost_usd,
  active_users,
  seats,
  IF(people > 0, active_people / people, NULL) AS adoption_rate,
  IF(seats > 0, seats_active / seats, NULL) AS seat_adoption_rate,
  IF(active_users > 0,
     CAST(CAST((DIV((2 * total_nano + active_users), (2 * active_users))) AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC),
     NULL) AS cost_per_active_user_usd,
  IF(previous_total_usd IS NULL OR previous_total_usd = 0, NULL,
     (CAST(total_nano AS FLOAT64) / 1000000000 - CAST(previous_total_usd AS FLOAT64)) / CAST(previous_total_usd AS FLOAT64) * 100)
    AS cost_change_pct,
  CASE
    WHEN NOT is_partial_month THEN CAST(CAST(total_nano AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC)
    WHEN data_through_date IS NULL THEN NULL
    ELSE CAST(CAST(
      total_nano - usage_nano
      + (DIV((2 * usage_nano * days_in_month + DATE_DIFF(data_through_date, @month_start, DAY) + 1),
             (2 * (DATE_DIFF(data_through_date, @month_start, DAY) + 1))))
      AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC)
  END AS projected_month_end_cost_usd,
  is_partial_month,
  data_through_date
FROM facts
