-- Freshness and coverage per source: last day with data, last final day, provisional and missing days.
WITH coverage AS (
  SELECT
    coverage_date,
    source,
    tool,
    status,
    checked_at,
    CASE WHEN tool = 'cursor' THEN 'cursor' ELSE 'claude' END AS product
  FROM marts.data_freshness
),
days AS (
  -- One row per source and day, written by the coverage checks; a day without a row was not checked.
  SELECT source, tool, coverage_date, status, checked_at
  FROM coverage
  WHERE TRUE
    [[AND coverage_date >= CAST({{date_from}} AS DATE)]]
    [[AND coverage_date <= CAST({{date_to}} AS DATE)]]
    [[AND tool = {{tool}}]]
    [[AND product = {{product}}]]
)
SELECT
  tool,
  source,
  CASE
    WHEN COUNTIF(status = 'missing') > 0 THEN 'missing'
    WHEN COUNTIF(status = 'provisional') > 0 THEN 'provisional'
    ELSE 'final'
  END AS status,
  MAX(IF(status != 'missing', coverage_date, NULL)) AS last_data_date,
  MAX(IF(status = 'final', coverage_date, NULL)) AS last_final_date,
  COUNTIF(status = 'final') AS final_days,
  COUNTIF(status = 'provisional') AS provisional_days,
  COUNTIF(status = 'missing') AS missing_days,
  STRING_AGG(IF(status = 'provisional', CAST(coverage_date AS STRING), NULL), ', ' ORDER BY coverage_date) AS provisional_dates,
  STRING_AGG(IF(status = 'missing', CAST(coverage_date AS STRING), NULL), ', ' ORDER BY coverage_date) AS missing_dates,
  MAX(checked_at) AS last_checked_at
FROM days
GROUP BY tool, source
ORDER BY tool, source
