-- Rows of marts.daily_usage_breakdown for a range of UTC days: per tool, person (or API key) and day, one row per request kind, billing kind, model or editing tool.
-- params: start_date DATE, end_date DATE
-- Only items with activity (a count or tokens above 0) get a row. Cursor models come from the usage
-- events (requests, tokens, charged amount as the cost signal); on a day without events, the daily row's
-- most-used model, with no counts. claude.ai rows are the export covering a month (the latest period
-- inside it, as the allocation), dated by the period's first day. Attribution as in
-- select_daily_tool_usage.sql (ref.attribution on the day; 'Unattributed' otherwise).
WITH
cursor_days AS (
  SELECT *
  FROM raw.cursor_daily_usage
  WHERE usage_date BETWEEN @start_date AND @end_date
),
cursor_counters AS (
  -- One SELECT per counter (UNNEST of STRUCT literals does not expand into columns on DuckDB).
  SELECT * FROM (
    SELECT usage_date, email, 'request_kind' AS breakdown, 'composer' AS item, composer_requests AS requests
    FROM cursor_days
    UNION ALL SELECT usage_date, email, 'request_kind', 'chat', chat_requests FROM cursor_days
    UNION ALL SELECT usage_date, email, 'request_kind', 'agent', agent_requests FROM cursor_days
    UNION ALL SELECT usage_date, email, 'request_kind', 'cmdk', cmdk_usages FROM cursor_days
    UNION ALL SELECT usage_date, email, 'request_kind', 'bugbot', bugbot_usages FROM cursor_days
    UNION ALL SELECT usage_date, email, 'billing_kind', 'included', subscription_included_reqs FROM cursor_days
    UNION ALL SELECT usage_date, email, 'billing_kind', 'usage_based', usage_based_reqs FROM cursor_days
    UNION ALL SELECT usage_date, email, 'billing_kind', 'api_key', api_key_reqs FROM cursor_days
  ) AS counters
  WHERE requests > 0
),
cursor_models AS (
  SELECT
    event_date AS usage_date,
    email,
    COALESCE(model, 'unknown') AS item,
    COUNT(*) AS requests,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens,
    SUM(charged_usd) AS estimated_cost_usd
  FROM raw.cursor_usage_events
  WHERE event_date BETWEEN @start_date AND @end_date AND email IS NOT NULL
  GROUP BY 1, 2, 3
),
cursor_most_used AS (
  -- Days without usage events: the daily row's most-used model, without counts.
  SELECT d.usage_date, d.email, d.most_used_model AS item
  FROM cursor_days AS d
  LEFT JOIN (SELECT DISTINCT usage_date, email FROM cursor_models) AS m
    ON m.usage_date = d.usage_date AND m.email = d.email
  WHERE d.is_active AND d.most_used_model IS NOT NULL AND m.email IS NULL
),
claude AS (
  SELECT *
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @start_date AND @end_date
),
claude_models AS (
  SELECT
    c.usage_date,
    c.actor_type,
    c.actor_id,
    m.model AS item,
    SUM(m.input_tokens) AS input_tokens,
    SUM(m.output_tokens) AS output_tokens,
    SUM(m.estimated_cost_usd) AS estimated_cost_usd
  FROM claude AS c, UNNEST(c.model_breakdown) AS m
  GROUP BY 1, 2, 3, 4
),
claude_tools AS (
  SELECT
    c.usage_date,
    c.actor_type,
    c.actor_id,
    CASE t.tool
      WHEN 'edit_tool' THEN 'Edit'
      WHEN 'multi_edit_tool' THEN 'MultiEdit'
      WHEN 'write_tool' THEN 'Write'
      WHEN 'notebook_edit_tool' THEN 'NotebookEdit'
      ELSE t.tool
    END AS item,
    SUM(t.accepted) AS accepted,
    SUM(t.rejected) AS rejected
  FROM claude AS c, UNNEST(c.tool_actions) AS t
  GROUP BY 1, 2, 3, 4
),
ai_periods AS (
  -- Per month, the latest export period inside it (periods spanning months are never split).
  SELECT period_start, period_end
  FROM raw.claude_ai_usage
  WHERE period_start BETWEEN @start_date AND @end_date
    AND DATE_TRUNC(period_start, MONTH) = DATE_TRUNC(period_end, MONTH)
  GROUP BY period_start, period_end
  QUALIFY ROW_NUMBER() OVER (PARTITION BY DATE_TRUNC(period_start, MONTH) ORDER BY period_end DESC, period_start) = 1
),
ai_models AS (
  SELECT
    u.period_start AS usage_date,
    u.email,
    COALESCE(u.model, 'unknown') AS item,
    SUM(u.total_requests) AS requests,
    SUM(u.total_prompt_tokens) AS input_tokens,
    SUM(u.total_completion_tokens) AS output_tokens
  FROM raw.claude_ai_usage AS u
  JOIN ai_periods AS p
    ON p.period_start = u.period_start AND p.period_end = u.period_end
  GROUP BY 1, 2, 3
),
items AS (
  SELECT usage_date, 'cursor' AS tool, 'user_actor' AS actor_type, email AS actor_id, breakdown, item, requests,
    CAST(NULL AS INT64) AS accepted, CAST(NULL AS INT64) AS rejected, CAST(NULL AS INT64) AS input_tokens,
    CAST(NULL AS INT64) AS output_tokens, CAST(NULL AS NUMERIC) AS estimated_cost_usd
  FROM cursor_counters
  UNION ALL
  SELECT usage_date, 'cursor', 'user_actor', email, 'model', item, requests, NULL, NULL, input_tokens,
    output_tokens, estimated_cost_usd
  FROM cursor_models
  UNION ALL
  SELECT usage_date, 'cursor', 'user_actor', email, 'model', item, NULL, NULL, NULL, NULL, NULL, NULL
  FROM cursor_most_used
  UNION ALL
  SELECT usage_date, 'claude_code', actor_type, actor_id, 'model', item, NULL, NULL, NULL, input_tokens,
    output_tokens, estimated_cost_usd
  FROM claude_models
  UNION ALL
  SELECT usage_date, 'claude_code', actor_type, actor_id, 'tool_action', item, NULL, accepted, rejected, NULL,
    NULL, NULL
  FROM claude_tools
  WHERE COALESCE(accepted, 0) + COALESCE(rejected, 0) > 0
  UNION ALL
  SELECT usage_date, 'claude_ai', 'user_actor', email, 'model', item, requests, NULL, NULL, input_tokens,
    output_tokens, NULL
  FROM ai_models
),
key_names AS (
  SELECT name, api_key_id
  FROM raw.anthropic_api_keys
  WHERE name IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY name ORDER BY snapshot_date DESC, api_key_id) = 1
),
names AS (
  SELECT email, name
  FROM ref.people
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY email ORDER BY COALESCE(valid_from, DATE '0001-01-01') DESC) = 1
)
SELECT
  i.usage_date,
  i.tool,
  IF(i.actor_type = 'user_actor', i.actor_id, NULL) AS email,
  IF(i.actor_type = 'api_actor', i.actor_id, NULL) AS api_key_name,
  n.name,
  COALESCE(
    IF(i.actor_type = 'user_actor', p.team,
       IF(by_id.team != 'Unattributed', by_id.team, by_name.team)),
    'Unattributed') AS team,
  IF(i.actor_type = 'user_actor', p.cost_center,
     IF(by_id.team != 'Unattributed', by_id.cost_center, by_name.cost_center)) AS cost_center,
  i.breakdown,
  i.item,
  i.requests,
  i.accepted,
  i.rejected,
  i.input_tokens,
  i.output_tokens,
  i.estimated_cost_usd
FROM items AS i
LEFT JOIN ref.attribution AS p
  ON i.actor_type = 'user_actor' AND p.subject_type = 'email' AND p.subject = i.actor_id
  AND (p.valid_from IS NULL OR i.usage_date >= p.valid_from)
  AND (p.valid_to IS NULL OR i.usage_date <= p.valid_to)
LEFT JOIN key_names AS k
  ON i.actor_type = 'api_actor' AND k.name = i.actor_id
LEFT JOIN ref.attribution AS by_id
  ON by_id.subject_type = 'api_key_id' AND by_id.subject = k.api_key_id
  AND (by_id.valid_from IS NULL OR i.usage_date >= by_id.valid_from)
  AND (by_id.valid_to IS NULL OR i.usage_date <= by_id.valid_to)
LEFT JOIN ref.attribution AS by_name
  ON i.actor_type = 'api_actor' AND by_name.subject_type = 'api_key_name' AND by_name.subject = i.actor_id
  AND (by_name.valid_from IS NULL OR i.usage_date >= by_name.valid_from)
  AND (by_name.valid_to IS NULL OR i.usage_date <= by_name.valid_to)
LEFT JOIN names AS n
  ON i.actor_type = 'user_actor' AND n.email = i.actor_id
ORDER BY i.usage_date, i.tool, email, api_key_name, i.breakdown, i.item
