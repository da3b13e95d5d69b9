-- Per member, Cursor's latest spend snapshot of a month next to the summed Usage-based charges of the usage events of its billing cycle, for the reconciliation check.
-- params: month_start DATE, month_end DATE
-- The snapshot (POST /teams/spend) is the cycle to date at the moment it was taken, during snapshot_date:
-- it should lie between the charges of [cycle start, snapshot_date - 1] and those of [cycle start,
-- snapshot_date]. Service-account events (no e-mail) are in no member's spend and are left out.
WITH
snapshot AS (
  SELECT snapshot_date, email, spend_usd, subscription_cycle_start_date
  FROM raw.cursor_spend
  WHERE snapshot_date BETWEEN @month_start AND @month_end
  QUALIFY snapshot_date = MAX(snapshot_date) OVER ()
),
bounds AS (
  SELECT
    MAX(snapshot_date) AS snapshot_date,
    COALESCE(MIN(subscription_cycle_start_date), MAX(snapshot_date)) AS cycle_start
  FROM snapshot
),
events AS (
  SELECT
    e.email,
    SUM(IF(e.event_date < b.snapshot_date, e.charged_usd, 0)) AS before_snapshot_day_usd,
    SUM(e.charged_usd) AS through_snapshot_day_usd,
    COUNT(DISTINCT e.event_date) AS days_with_events
  FROM raw.cursor_usage_events AS e
  CROSS JOIN bounds AS b
  WHERE e.event_date BETWEEN b.cycle_start AND b.snapshot_date
    AND e.kind = 'Usage-based' AND COALESCE(e.is_chargeable, TRUE) AND e.email IS NOT NULL
  GROUP BY e.email
)
SELECT
  b.snapshot_date,
  b.cycle_start,
  COALESCE(s.email, e.email) AS email,
  COALESCE(s.spend_usd, 0) AS spend_usd,
  COALESCE(e.before_snapshot_day_usd, 0) AS before_snapshot_day_usd,
  COALESCE(e.through_snapshot_day_usd, 0) AS through_snapshot_day_usd
FROM snapshot AS s
FULL OUTER JOIN events AS e
  ON e.email = s.email
CROSS JOIN bounds AS b
WHERE b.snapshot_date IS NOT NULL
ORDER BY email
