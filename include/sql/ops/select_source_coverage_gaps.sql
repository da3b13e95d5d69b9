-- Days of a range that are not final per known source (provisional, missing, or never checked), oldest first.
-- params: start_date DATE, end_date DATE
WITH sources AS (
  SELECT DISTINCT source FROM ops.source_coverage
),
calendar AS (
  SELECT day FROM UNNEST(GENERATE_DATE_ARRAY(@start_date, @end_date)) AS day
)
SELECT
  s.source,
  c.day AS coverage_date,
  COALESCE(cov.status, 'unchecked') AS status,
  cov.row_count,
  cov.checked_at
FROM sources AS s
CROSS JOIN calendar AS c
LEFT JOIN ops.source_coverage AS cov
  ON cov.source = s.source AND cov.coverage_date = c.day
WHERE cov.status IS NULL OR cov.status != 'final'
ORDER BY s.source, coverage_date
