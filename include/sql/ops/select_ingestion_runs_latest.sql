-- The latest attempt of every DAG task and endpoint: status, rows loaded and quarantined, when and how long.
SELECT
  dag_id,
  task_id,
  endpoint,
  target_table,
  run_id,
  status,
  interval_start,
  interval_end,
  rows_loaded,
  rows_quarantined,
  api_calls,
  retries,
  started_at,
  finished_at,
  duration_s,
  error
FROM ops.ingestion_runs
WHERE TRUE  -- BigQuery accepts QUALIFY only next to a WHERE, GROUP BY or HAVING clause
QUALIFY ROW_NUMBER() OVER (
  PARTITION BY dag_id, task_id, COALESCE(endpoint, '')
  ORDER BY started_at DESC, try_number DESC
) = 1
ORDER BY dag_id, task_id, endpoint
