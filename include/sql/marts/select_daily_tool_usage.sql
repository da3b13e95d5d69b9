-- Rows of marts.daily_tool_usage for a range of UTC days: activity per tool and person (or API key), with the team and cost centre of that day.
-- params: start_date DATE, end_date DATE
-- Reads only the range's raw partitions, plus ref.attribution (the Sheet's mapping resolved per day) and
-- the API key listings (name -> id). Unmapped people and keys get the team 'Unattributed'. A counter a tool does not report
-- is NULL; a day without raw rows has no rows here (missing, never zero: see ops.source_coverage).
WITH
cursor_events AS (
  SELECT
    event_date AS usage_date,
    email,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens,
    SUM(charged_usd) AS charged_usd
  FROM raw.cursor_usage_events
  WHERE event_date BETWEEN @start_date AND @end_date AND email IS NOT NULL
  GROUP BY event_date, email
),
cursor_days AS (
  SELECT
    d.usage_date,
    'cursor' AS tool,
    d.email,
    CAST(NULL AS STRING) AS api_key_name,
    CAST(NULL AS STRING) AS owner_email,
    COALESCE(d.is_active, FALSE) AS is_active,
    CAST(NULL AS INT64) AS sessions,
    IF(
      COALESCE(d.composer_requests, d.chat_requests, d.agent_requests, d.cmdk_usages) IS NULL,
      NULL,
      COALESCE(d.composer_requests, 0) + COALESCE(d.chat_requests, 0) + COALESCE(d.agent_requests, 0)
        + COALESCE(d.cmdk_usages, 0)
    ) AS requests,
    d.total_lines_added AS lines_added,
    d.accepted_lines_added AS lines_accepted,
    d.total_accepts AS accepts,
    d.total_rejects AS rejects,
    d.total_tabs_shown AS tabs_shown,
    d.total_tabs_accepted AS tabs_accepted,
    e.input_tokens,
    e.output_tokens,
    CAST(NULL AS INT64) AS commits,
    CAST(NULL AS INT64) AS pull_requests,
    e.charged_usd AS estimated_cost_usd
  FROM raw.cursor_daily_usage AS d
  LEFT JOIN cursor_events AS e
    ON e.usage_date = d.usage_date AND e.email = d.email
  WHERE d.usage_date BETWEEN @start_date AND @end_date
),
claude_records AS (
  SELECT
    usage_date,
    actor_type,
    actor_id,
    num_sessions,
    lines_added,
    commits_by_claude_code,
    pull_requests_by_claude_code,
    (SELECT SUM(t.accepted) FROM UNNEST(tool_actions) AS t) AS accepts,
    (SELECT SUM(t.rejected) FROM UNNEST(tool_actions) AS t) AS rejects,
    (SELECT SUM(m.input_tokens) FROM UNNEST(model_breakdown) AS m) AS input_tokens,
    (SELECT SUM(m.output_tokens) FROM UNNEST(model_breakdown) AS m) AS output_tokens,
    estimated_cost_usd
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @start_date AND @end_date
),
claude_actors AS (
  -- One row per actor and day: a record per terminal and customer type is summed.
  SELECT
    usage_date,
    actor_type,
    actor_id,
    SUM(num_sessions) AS sessions,
    SUM(lines_added) AS lines_added,
    SUM(accepts) AS accepts,
    SUM(rejects) AS rejects,
    SUM(input_tokens) AS input_tokens,
    SUM(output_tokens) AS output_tokens,
    SUM(commits_by_claude_code) AS commits,
    SUM(pull_requests_by_claude_code) AS pull_requests,
    SUM(estimated_cost_usd) AS estimated_cost_usd
  FROM claude_records
  GROUP BY usage_date, actor_type, actor_id
),
key_names AS (
  -- API key name -> id, from the latest listing that names it (the Claude Code report names keys).
  SELECT name, api_key_id
  FROM raw.anthropic_api_keys
  WHERE name IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY name ORDER BY snapshot_date DESC, api_key_id) = 1
),
key_owners AS (
  -- ref.attribution of the key: by its id (through the listing), else by the name the Sheet gives it.
  SELECT
    a.usage_date,
    a.actor_id,
    IF(by_id.team != 'Unattributed', by_id.owner_email, by_name.owner_email) AS owner_email,
    IF(by_id.team != 'Unattributed', by_id.team, by_name.team) AS team,
    IF(by_id.team != 'Unattributed', by_id.cost_center, by_name.cost_center) AS cost_center
  FROM claude_actors AS a
  LEFT JOIN key_names AS k
    ON k.name = a.actor_id
  LEFT JOIN ref.attribution AS by_id
    ON by_id.subject_type = 'api_key_id' AND by_id.subject = k.api_key_id
    AND (by_id.valid_from IS NULL OR a.usage_date >= by_id.valid_from)
    AND (by_id.valid_to IS NULL OR a.usage_date <= by_id.valid_to)
  LEFT JOIN ref.attribution AS by_name
    ON by_name.subject_type = 'api_key_name' AND by_name.subject = a.actor_id
    AND (by_name.valid_from IS NULL OR a.usage_date >= by_name.valid_from)
    AND (by_name.valid_to IS NULL OR a.usage_date <= by_name.valid_to)
  WHERE a.actor_type = 'api_actor'
),
claude_days AS (
  SELECT
    a.usage_date,
    'claude_code' AS tool,
    IF(a.actor_type = 'user_actor', a.actor_id, NULL) AS email,
    IF(a.actor_type = 'api_actor', a.actor_id, NULL) AS api_key_name,
    IF(a.actor_type = 'user_actor', a.actor_id, o.owner_email) AS owner_email,
    COALESCE(a.sessions, 0) > 0 AS is_active,
    a.sessions,
    CAST(NULL AS INT64) AS requests,
    a.lines_added,
    a.lines_added AS lines_accepted,
    a.accepts,
    a.rejects,
    CAST(NULL AS INT64) AS tabs_shown,
    CAST(NULL AS INT64) AS tabs_accepted,
    a.input_tokens,
    a.output_tokens,
    a.commits,
    a.pull_requests,
    a.estimated_cost_usd,
    o.team AS key_team,
    o.cost_center AS key_cost_center
  FROM claude_actors AS a
  LEFT JOIN key_owners AS o
    ON o.usage_date = a.usage_date AND o.actor_id = a.actor_id AND a.actor_type = 'api_actor'
),
activity AS (
  SELECT
    *,
    CAST(NULL AS STRING) AS key_team,
    CAST(NULL AS STRING) AS key_cost_center
  FROM cursor_days
  UNION ALL
  SELECT * FROM claude_days
),
names AS (
  -- A person's display name: the latest row of ref.people.
  SELECT email, name
  FROM ref.people
  WHERE TRUE
  QUALIFY ROW_NUMBER() OVER (PARTITION BY email ORDER BY COALESCE(valid_from, DATE '0001-01-01') DESC) = 1
),
attributed AS (
  SELECT
    a.*,
    n.name,
    p.team AS person_team,
    p.cost_center AS person_cost_center
  FROM activity AS a
  LEFT JOIN ref.attribution AS p
    ON p.subject_type = 'email' AND p.subject = a.email
    AND (p.valid_from IS NULL OR a.usage_date >= p.valid_from)
    AND (p.valid_to IS NULL OR a.usage_date <= p.valid_to)
  LEFT JOIN names AS n
    ON n.email = a.email
)
SELECT
  usage_date,
  tool,
  email,
  api_key_name,
  owner_email,
  name,
  COALESCE(IF(api_key_name IS NULL, person_team, key_team), 'Unattributed') AS team,
  IF(api_key_name IS NULL, person_cost_center, key_cost_center) AS cost_center,
  is_active,
  sessions,
  requests,
  lines_added,
  lines_accepted,
  accepts,
  rejects,
  tabs_shown,
  tabs_accepted,
  input_tokens,
  output_tokens,
  commits,
  pull_requests,
  estimated_cost_usd
FROM attributed
ORDER BY usage_date, tool, email, api_key_name
