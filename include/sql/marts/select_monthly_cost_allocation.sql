-- Rows of marts.monthly_cost_allocation for one month: billed cost per tool and cost kind, allocated to team, cost centre, person and API key so that the parts add up exactly to the billed totals.
-- params: month_start DATE, month_end DATE
-- Billed usage (cost_kind 'usage_billed'):
--   cursor      the Usage-based (on-demand) charges of the month's usage events, per person as billed
--               (vendor_per_user); included usage is paid by the seat fee;
--   claude_code the developer-tooling rows of the Anthropic cost report (platform 'claude_code'). A workspace
--               the Sheet maps as a whole goes to its owner (workspace_owner); the rest has no per-user
--               dimension, so it is split among people and API keys in proportion to their Claude Code
--               estimates of the month (estimate_share / api_key_owner): estimates only split, never add;
--   claude_ai   the net spend of the claude.ai export covering the month (the latest period inside it).
-- Seat fees (cost_kind 'seat_fee'): ref.seat_prices in effect on the month's first day (or the first
-- change inside it) x seats (NULL seats = the roster). Shared equally by the roster (Cursor: members with
-- a daily row; claude.ai: people in the export and Claude Code subscription users); seats paid beyond
-- the roster are 'seat_unassigned'. Splits run on integer nano-dollars with the largest-remainder method
-- (DuckDB divides DECIMALs in floating point), ties broken by the row's key; a total below 0 (a credit)
-- is split by its absolute value. Weights of the estimate split are whole cents, so a month's Claude
-- Code estimates must stay under 30 million USD (the INT64 products would overflow and fail loudly).
-- Team, cost centre and owner come from ref.attribution (the Sheet's mapping resolved per day, built by
-- ingest_sheets) on the day of the usage; anything that maps to no one is team 'Unattributed' with
-- allocation_basis 'unattributed'.
WITH
attribution_of_people AS (
  -- ref.attribution of e-mails, with team NULL where it says 'Unattributed' (unmapped is handled below).
  SELECT subject, valid_from, valid_to, IF(team = 'Unattributed', NULL, team) AS team, cost_center
  FROM ref.attribution
  WHERE subject_type = 'email'
),
-- ------------------------------------------------------------------ Claude Code: billed and owned
cc_cost AS (
  SELECT cost_date, workspace_id, workspace_name, SUM(amount_usd) AS amount_usd
  FROM raw.anthropic_costs
  WHERE cost_date BETWEEN @month_start AND @month_end AND platform = 'claude_code'
  GROUP BY cost_date, workspace_id, workspace_name
),
workspace_names AS (
  SELECT LOWER(subject) AS name_lower, team, cost_center, owner_email, valid_from, valid_to
  FROM ref.attribution
  WHERE subject_type = 'workspace' AND NOT STARTS_WITH(subject, 'wrkspc_')
),
cc_cost_owner AS (
  -- A workspace the Sheet maps as a whole (ref.attribution, by id, else by name in any case) goes to its owner.
  SELECT
    c.cost_date,
    c.amount_usd,
    IF(i.team != 'Unattributed', i.owner_email, n.owner_email) AS owner_email,
    IF(i.team != 'Unattributed', i.team, IF(n.team != 'Unattributed', n.team, NULL)) AS team,
    IF(i.team != 'Unattributed', i.cost_center, n.cost_center) AS cost_center
  FROM cc_cost AS c
  LEFT JOIN ref.attribution AS i
    ON i.subject_type = 'workspace' AND i.subject = c.workspace_id
    AND (i.valid_from IS NULL OR c.cost_date >= i.valid_from)
    AND (i.valid_to IS NULL OR c.cost_date <= i.valid_to)
  LEFT JOIN workspace_names AS n
    ON n.name_lower = LOWER(c.workspace_name)
    AND (n.valid_from IS NULL OR c.cost_date >= n.valid_from)
    AND (n.valid_to IS NULL OR c.cost_date <= n.valid_to)
),
cc_owned_rows AS (
  SELECT
    'claude_code' AS tool,
    'usage_billed' AS cost_kind,
    team,
    cost_center,
    owner_email AS email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    'workspace_owner' AS allocation_basis,
    CAST(SUM(amount_usd) * 1000000000 AS INT64) AS nano
  FROM cc_cost_owner
  WHERE team IS NOT NULL
  GROUP BY team, cost_center, owner_email
),
-- ------------------------------------------------------------------ Claude Code: estimate shares
cc_actor_days AS (
  SELECT usage_date, actor_type, actor_id, SUM(estimated_cost_usd) AS estimated_usd
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND customer_type = 'api'
  GROUP BY usage_date, actor_type, actor_id
),
key_names AS (
  SELECT name, api_key_id
  FROM raw.anthropic_api_keys
  WHERE name IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY name ORDER BY snapshot_date DESC, api_key_id) = 1
),
cc_user_shares AS (
  SELECT
    a.estimated_usd,
    a.actor_id AS email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    IF(p.team != 'Unattributed', p.team, NULL) AS team,
    p.cost_center
  FROM cc_actor_days AS a
  LEFT JOIN ref.attribution AS p
    ON p.subject_type = 'email' AND p.subject = a.actor_id
    AND (p.valid_from IS NULL OR a.usage_date >= p.valid_from)
    AND (p.valid_to IS NULL OR a.usage_date <= p.valid_to)
  WHERE a.actor_type = 'user_actor'
),
cc_key_shares AS (
  -- A key's attribution by its id (through the listing), else by the name the Sheet gives it.
  SELECT
    a.estimated_usd,
    IF(by_id.team != 'Unattributed', by_id.owner_email, by_name.owner_email) AS email,
    k.api_key_id,
    a.actor_id AS api_key_name,
    IF(by_id.team != 'Unattributed', by_id.team, IF(by_name.team != 'Unattributed', by_name.team, NULL)) AS team,
    IF(by_id.team != 'Unattributed', by_id.cost_center, by_name.cost_center) AS cost_center
  FROM cc_actor_days AS a
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
cc_parts AS (
  SELECT
    'claude_code' AS tool,
    'usage_billed' AS cost_kind,
    COALESCE(team, 'Unattributed') AS team,
    IF(team IS NULL, NULL, cost_center) AS cost_center,
    email,
    api_key_id,
    api_key_name,
    CASE
      WHEN team IS NULL THEN 'unattributed'
      WHEN api_key_name IS NULL THEN 'estimate_share'
      ELSE 'api_key_owner'
    END AS allocation_basis,
    CAST(ROUND(SUM(estimated_usd) * 100) AS INT64) AS weight  -- NULL when no estimate: left out below
  FROM (SELECT * FROM cc_user_shares UNION ALL SELECT * FROM cc_key_shares) AS s
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
cc_pool AS (
  SELECT 'claude_code' AS tool, 'usage_billed' AS cost_kind, CAST(SUM(amount_usd) * 1000000000 AS INT64) AS total_nano
  FROM cc_cost_owner
  WHERE team IS NULL
  HAVING COUNT(*) > 0
),
-- ------------------------------------------------------------------ claude.ai: the export of the month
ai_period AS (
  SELECT period_start, period_end
  FROM raw.claude_ai_usage
  WHERE period_start BETWEEN @month_start AND @month_end AND period_end <= @month_end
  GROUP BY period_start, period_end
  QUALIFY ROW_NUMBER() OVER (ORDER BY period_end DESC, period_start) = 1
),
ai_rows AS (
  SELECT u.period_end, u.email, u.net_spend_usd, u.total_requests
  FROM raw.claude_ai_usage AS u
  JOIN ai_period AS p
    ON p.period_start = u.period_start AND p.period_end = u.period_end
),
-- ------------------------------------------------------------------ billed per person (no split)
cursor_usage AS (
  SELECT event_date, email, SUM(charged_usd) AS amount_usd
  FROM raw.cursor_usage_events
  WHERE event_date BETWEEN @month_start AND @month_end
    AND kind = 'Usage-based' AND COALESCE(is_chargeable, TRUE) AND charged_usd IS NOT NULL
  GROUP BY event_date, email
),
per_person AS (
  SELECT 'cursor' AS tool, event_date AS day, email, amount_usd FROM cursor_usage
  UNION ALL
  SELECT 'claude_ai' AS tool, period_end AS day, email, SUM(net_spend_usd) AS amount_usd
  FROM ai_rows
  GROUP BY period_end, email
),
per_person_rows AS (
  SELECT
    u.tool,
    'usage_billed' AS cost_kind,
    COALESCE(p.team, 'Unattributed') AS team,
    IF(p.team IS NULL, NULL, p.cost_center) AS cost_center,
    u.email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    IF(p.team IS NULL, 'unattributed', 'vendor_per_user') AS allocation_basis,
    CAST(u.amount_usd * 1000000000 AS INT64) AS nano
  FROM per_person AS u
  LEFT JOIN attribution_of_people AS p
    ON p.subject = u.email
    AND (p.valid_from IS NULL OR u.day >= p.valid_from)
    AND (p.valid_to IS NULL OR u.day <= p.valid_to)
),
-- ------------------------------------------------------------------ seat fees
prices AS (
  SELECT tool, plan, monthly_price_usd, seats
  FROM ref.seat_prices
  WHERE (valid_from IS NULL OR valid_from <= @month_end) AND (valid_to IS NULL OR valid_to >= @month_start)
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY tool, plan
    ORDER BY
      IF(COALESCE(valid_from, DATE '0001-01-01') <= @month_start, 0, 1),
      IF(COALESCE(valid_from, DATE '0001-01-01') <= @month_start, COALESCE(valid_from, DATE '0001-01-01'), NULL) DESC,
      valid_from
  ) = 1
),
roster_days AS (
  SELECT 'cursor' AS tool, email, MAX(usage_date) AS day
  FROM raw.cursor_daily_usage
  WHERE usage_date BETWEEN @month_start AND @month_end
  GROUP BY email
  UNION ALL
  SELECT 'claude_ai' AS tool, email, MAX(period_end) AS day
  FROM ai_rows
  WHERE email IS NOT NULL
  GROUP BY email
  UNION ALL
  SELECT IF(customer_type = 'subscription', 'claude_ai', 'claude_code') AS tool, actor_id AS email, MAX(usage_date) AS day
  FROM raw.claude_code_usage
  WHERE usage_date BETWEEN @month_start AND @month_end AND actor_type = 'user_actor'
  GROUP BY 1, 2
),
roster AS (
  SELECT tool, email, MAX(day) AS day
  FROM roster_days
  GROUP BY tool, email
),
holders AS (
  SELECT tool, COUNT(*) AS holders FROM roster GROUP BY tool
),
seat_totals AS (
  SELECT
    p.tool,
    'seat_fee' AS cost_kind,
    SUM(CAST(p.monthly_price_usd * 1000000000 AS INT64) * COALESCE(p.seats, h.holders, 0)) AS total_nano,
    SUM(COALESCE(p.seats, h.holders, 0)) AS seats,
    ANY_VALUE(COALESCE(h.holders, 0)) AS holders
  FROM prices AS p
  LEFT JOIN holders AS h
    ON h.tool = p.tool
  GROUP BY p.tool
),
seat_parts AS (
  SELECT
    r.tool,
    'seat_fee' AS cost_kind,
    COALESCE(p.team, 'Unattributed') AS team,
    IF(p.team IS NULL, NULL, p.cost_center) AS cost_center,
    r.email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    IF(p.team IS NULL, 'unattributed', 'seat') AS allocation_basis,
    1 AS weight
  FROM roster AS r
  JOIN seat_totals AS t
    ON t.tool = r.tool
  LEFT JOIN attribution_of_people AS p
    ON p.subject = r.email
    AND (p.valid_from IS NULL OR r.day >= p.valid_from)
    AND (p.valid_to IS NULL OR r.day <= p.valid_to)
  UNION ALL
  SELECT
    tool,
    'seat_fee' AS cost_kind,
    'Unattributed' AS team,
    CAST(NULL AS STRING) AS cost_center,
    CAST(NULL AS STRING) AS email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    'seat_unassigned' AS allocation_basis,
    seats - holders AS weight
  FROM seat_totals
  WHERE seats > holders
),
-- ------------------------------------------------------------------ largest-remainder split
split_totals AS (
  SELECT tool, cost_kind, total_nano FROM cc_pool
  UNION ALL
  SELECT tool, cost_kind, total_nano FROM seat_totals
),
split_parts AS (
  SELECT * FROM cc_parts WHERE weight > 0
  UNION ALL
  SELECT * FROM seat_parts WHERE weight > 0
),
fallback_parts AS (
  -- A billed total with nobody to split it among (no estimates, no seats): all of it is Unattributed.
  SELECT
    t.tool,
    t.cost_kind,
    'Unattributed' AS team,
    CAST(NULL AS STRING) AS cost_center,
    CAST(NULL AS STRING) AS email,
    CAST(NULL AS STRING) AS api_key_id,
    CAST(NULL AS STRING) AS api_key_name,
    'unattributed' AS allocation_basis,
    1 AS weight
  FROM split_totals AS t
  LEFT JOIN (SELECT DISTINCT tool, cost_kind FROM split_parts) AS s
    ON s.tool = t.tool AND s.cost_kind = t.cost_kind
  WHERE s.tool IS NULL
),
weighted AS (
  SELECT
    p.*,
    ABS(t.total_nano) AS total_abs,
    SIGN(t.total_nano) AS total_sign,
    SUM(p.weight) OVER (PARTITION BY p.tool, p.cost_kind) AS weight_total
  FROM (SELECT * FROM split_parts UNION ALL SELECT * FROM fallback_parts) AS p
  JOIN split_totals AS t
    ON t.tool = p.tool AND t.cost_kind = p.cost_kind
),
shares AS (
  -- floor(total * weight / weight_total) without overflowing INT64: q * weight + floor(r * weight / weight_total).
  -- DIV operands stay in parentheses: sqlglot writes DIV(a + b, c) for DuckDB as a + b // c.
  SELECT
    *,
    (DIV(total_abs, weight_total)) * weight + (DIV((MOD(total_abs, weight_total) * weight), weight_total)) AS base_nano,
    MOD(MOD(total_abs, weight_total) * weight, weight_total) AS remainder
  FROM weighted
),
ranked AS (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY tool, cost_kind
      ORDER BY remainder DESC, team, COALESCE(cost_center, ''), COALESCE(email, ''), COALESCE(api_key_id, ''),
        COALESCE(api_key_name, ''), allocation_basis
    ) AS remainder_rank,
    total_abs - SUM(base_nano) OVER (PARTITION BY tool, cost_kind) AS leftover
  FROM shares
),
split_rows AS (
  SELECT
    tool, cost_kind, team, cost_center, email, api_key_id, api_key_name, allocation_basis,
    total_sign * (base_nano + IF(remainder_rank <= leftover, 1, 0)) AS nano
  FROM ranked
),
all_rows AS (
  SELECT * FROM split_rows
  UNION ALL
  SELECT * FROM cc_owned_rows
  UNION ALL
  SELECT * FROM per_person_rows
)
SELECT
  @month_start AS month,
  tool,
  cost_kind,
  team,
  cost_center,
  email,
  api_key_id,
  api_key_name,
  allocation_basis,
  CAST(CAST(SUM(nano) AS NUMERIC) * NUMERIC '0.000000001' AS NUMERIC) AS amount_usd
FROM all_rows
GROUP BY tool, cost_kind, team, cost_center, email, api_key_id, api_key_name, allocation_basis
HAVING SUM(nano) != 0
ORDER BY tool, cost_kind, team, cost_center, email, api_key_id, api_key_name, allocation_basis
