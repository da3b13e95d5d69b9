-- API keys seen in the Anthropic data (the latest key listing, Claude Code API actors of a window) with their estimated Claude Code spend and tokens over the window, for the unmapped-key workflow.
-- params: since_date DATE, until_date DATE
WITH latest AS (
  SELECT api_key_id, name, status, workspace_id
  FROM raw.anthropic_api_keys
  WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM raw.anthropic_api_keys)
),
actors AS (
  SELECT actor_id AS api_key_name, SUM(COALESCE(estimated_cost_usd, 0)) AS spend_usd,
    MAX(usage_date) AS last_used_date
  FROM raw.claude_code_usage
  WHERE actor_type = 'api_actor' AND usage_date BETWEEN @since_date AND @until_date
  GROUP BY actor_id
),
tokens AS (
  SELECT api_key_id,
    SUM(COALESCE(uncached_input_tokens, 0) + COALESCE(cache_creation_1h_input_tokens, 0)
      + COALESCE(cache_creation_5m_input_tokens, 0) + COALESCE(cache_read_input_tokens, 0)
      + COALESCE(output_tokens, 0)) AS tokens,
    MAX(usage_date) AS last_used_date
  FROM raw.anthropic_messages_usage
  WHERE api_key_id IS NOT NULL AND usage_date BETWEEN @since_date AND @until_date
  GROUP BY api_key_id
),
workspace_names AS (
  SELECT workspace_id, name
  FROM raw.anthropic_workspaces
  WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM raw.anthropic_workspaces)
),
seen AS (
  SELECT api_key_id, name AS api_key_name, status, workspace_id, 'API key listing' AS seen_in
  FROM latest
  UNION ALL
  -- A Claude Code API actor is named by its key's name of that day: one the listing does not know.
  SELECT CAST(NULL AS STRING), api_key_name, CAST(NULL AS STRING), CAST(NULL AS STRING), 'Claude Code report'
  FROM actors
  WHERE api_key_name NOT IN (SELECT name FROM latest WHERE name IS NOT NULL)
)
SELECT
  s.api_key_id,
  s.api_key_name,
  s.status,
  CASE
    WHEN s.api_key_id IS NULL THEN NULL
    WHEN s.workspace_id IS NULL THEN 'Default Workspace'
    ELSE COALESCE(w.name, s.workspace_id)
  END AS workspace,
  s.seen_in,
  COALESCE(a.spend_usd, 0) AS estimated_spend_usd,
  COALESCE(t.tokens, 0) AS tokens,
  a.last_used_date AS claude_code_last_date,
  t.last_used_date AS api_last_date
FROM seen AS s
LEFT JOIN actors AS a ON a.api_key_name = s.api_key_name
LEFT JOIN tokens AS t ON t.api_key_id = s.api_key_id
LEFT JOIN workspace_names AS w ON w.workspace_id = s.workspace_id
ORDER BY estimated_spend_usd DESC, tokens DESC, s.api_key_name, s.api_key_id
