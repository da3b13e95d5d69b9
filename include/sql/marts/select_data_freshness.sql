-- Rows of marts.data_freshness for a range of UTC days: ops.source_coverage of the sources that feed a tool's figures, with that tool.
-- params: start_date DATE, end_date DATE
SELECT
  coverage_date,
  source,
  CASE
    WHEN source IN ('cursor_daily_usage', 'cursor_usage_events') THEN 'cursor'
    WHEN source IN ('claude_code_usage', 'anthropic_costs') THEN 'claude_code'
    ELSE 'claude_ai'
  END AS tool,
  status,
  row_count,
  checked_at
FROM ops.source_coverage
WHERE coverage_date BETWEEN @start_date AND @end_date
  AND source IN ('cursor_daily_usage', 'cursor_usage_events', 'claude_code_usage', 'anthropic_costs', 'claude_ai_usage')
ORDER BY source, coverage_date
