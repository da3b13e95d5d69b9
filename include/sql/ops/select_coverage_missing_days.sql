-- Days of a range that a source never covered (no row in ops.source_coverage) or covered as missing, from the source's first covered day on.
-- params: start_date DATE, end_date DATE, sources ARRAY<STRING>
-- A source with no coverage at all is not reported (not yet ingested anywhere); days before its first
-- covered day are history the deployment never had, not gaps.
WITH
firsts AS (
  SELECT source, MIN(coverage_date) AS first_day
  FROM ops.source_coverage
  WHERE source IN UNNEST(@sources) AND status != 'missing'
  GROUP BY source
),
calendar AS (
  SELECT day FROM UNNEST(GENERATE_DATE_ARRAY(@start_date, @end_date)) AS day
)
SELECT
  f.source,
  c.day AS coverage_date,
  cov.status,
  cov.row_count
FROM firsts AS f
JOIN calendar AS c
  ON c.day >= f.first_day
LEFT JOIN ops.source_coverage AS cov
  ON cov.source = f.source AND cov.coverage_date = c.day
WHERE cov.status IS NULL OR cov.status = 'missing'
ORDER BY f.source, coverage_date
