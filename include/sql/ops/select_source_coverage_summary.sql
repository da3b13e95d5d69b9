-- Coverage per source over its whole history: days final / provisional / missing, first and last day with data.
SELECT
  source,
  COUNTIF(status = 'final') AS days_final,
  COUNTIF(status = 'provisional') AS days_provisional,
  COUNTIF(status = 'missing') AS days_missing,
  MIN(IF(status != 'missing', coverage_date, NULL)) AS first_date,
  MAX(IF(status != 'missing', coverage_date, NULL)) AS last_date,
  MAX(IF(status = 'final', coverage_date, NULL)) AS last_final_date,
  SUM(row_count) AS row_count,
  MAX(checked_at) AS last_checked_at
FROM ops.source_coverage
GROUP BY source
ORDER BY source
