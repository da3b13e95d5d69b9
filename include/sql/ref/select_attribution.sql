-- Resolved attribution for ref.attribution: e-mails, API keys (id, name) and workspaces -> team per validity range; every other day of a known subject is 'Unattributed'.
WITH owner_rows AS (
  SELECT 'api_key_id' AS subject_type, api_key_id AS subject, workspace, owner_email, team, cost_center,
    valid_from, valid_to
  FROM ref.api_key_owners
  WHERE api_key_id IS NOT NULL
  UNION ALL
  SELECT 'api_key_name', api_key_name, workspace, owner_email, team, cost_center, valid_from, valid_to
  FROM ref.api_key_owners
  WHERE api_key_name IS NOT NULL
  UNION ALL
  -- A row with neither key id nor key name maps its whole workspace.
  SELECT 'workspace', workspace, workspace, owner_email, team, cost_center, valid_from, valid_to
  FROM ref.api_key_owners
  WHERE api_key_id IS NULL AND api_key_name IS NULL AND workspace IS NOT NULL
),
people AS (
  SELECT 'email' AS subject_type, email AS subject, valid_from, valid_to, team, cost_center,
    email AS owner_email, 'people' AS basis
  FROM ref.people
),
direct AS (
  SELECT subject_type, subject, valid_from, valid_to, team, cost_center, owner_email, 'api_key_owners' AS basis
  FROM owner_rows
  WHERE team IS NOT NULL
),
-- A key or workspace row without a team but with an owner: the owner's team in ref.people, day by day.
via_owner AS (
  SELECT
    k.subject_type,
    k.subject,
    NULLIF(GREATEST(COALESCE(k.valid_from, DATE '0001-01-01'), COALESCE(p.valid_from, DATE '0001-01-01')),
      DATE '0001-01-01') AS valid_from,
    NULLIF(LEAST(COALESCE(k.valid_to, DATE '9999-12-31'), COALESCE(p.valid_to, DATE '9999-12-31')),
      DATE '9999-12-31') AS valid_to,
    p.team,
    p.cost_center,
    k.owner_email,
    'owner' AS basis
  FROM owner_rows AS k
  JOIN ref.people AS p
    ON p.email = k.owner_email
    AND COALESCE(k.valid_from, DATE '0001-01-01') <= COALESCE(p.valid_to, DATE '9999-12-31')
    AND COALESCE(p.valid_from, DATE '0001-01-01') <= COALESCE(k.valid_to, DATE '9999-12-31')
  WHERE k.team IS NULL AND k.owner_email IS NOT NULL
),
-- A key row without team and owner: the team of its workspace's own row, where one applies.
via_workspace AS (
  SELECT
    k.subject_type,
    k.subject,
    NULLIF(GREATEST(COALESCE(k.valid_from, DATE '0001-01-01'), COALESCE(w.valid_from, DATE '0001-01-01')),
      DATE '0001-01-01') AS valid_from,
    NULLIF(LEAST(COALESCE(k.valid_to, DATE '9999-12-31'), COALESCE(w.valid_to, DATE '9999-12-31')),
      DATE '9999-12-31') AS valid_to,
    w.team,
    w.cost_center,
    w.owner_email,
    'workspace' AS basis
  FROM owner_rows AS k
  JOIN direct AS w
    ON w.subject_type = 'workspace'
    AND w.subject = k.workspace
    AND COALESCE(k.valid_from, DATE '0001-01-01') <= COALESCE(w.valid_to, DATE '9999-12-31')
    AND COALESCE(w.valid_from, DATE '0001-01-01') <= COALESCE(k.valid_to, DATE '9999-12-31')
  WHERE k.team IS NULL AND k.owner_email IS NULL AND k.subject_type != 'workspace'
),
-- Rows that name no team, no owner and no mapped workspace: known, but nobody's yet.
unmapped AS (
  SELECT k.subject_type, k.subject, k.valid_from, k.valid_to, 'Unattributed' AS team,
    CAST(NULL AS STRING) AS cost_center, CAST(NULL AS STRING) AS owner_email, 'unmapped' AS basis
  FROM owner_rows AS k
  WHERE k.team IS NULL AND k.owner_email IS NULL
    AND NOT EXISTS (
      SELECT 1 FROM via_workspace AS v WHERE v.subject_type = k.subject_type AND v.subject = k.subject
    )
),
mapped AS (
  SELECT * FROM people
  UNION ALL SELECT * FROM direct
  UNION ALL SELECT * FROM via_owner
  UNION ALL SELECT * FROM via_workspace
  UNION ALL SELECT * FROM unmapped
),
bounds AS (
  SELECT
    subject_type,
    subject,
    COALESCE(valid_from, DATE '0001-01-01') AS lo,
    COALESCE(valid_to, DATE '9999-12-31') AS hi,
    LAG(COALESCE(valid_to, DATE '9999-12-31')) OVER (
      PARTITION BY subject_type, subject ORDER BY COALESCE(valid_from, DATE '0001-01-01')
    ) AS prev_hi,
    LEAD(COALESCE(valid_from, DATE '0001-01-01')) OVER (
      PARTITION BY subject_type, subject ORDER BY COALESCE(valid_from, DATE '0001-01-01')
    ) AS next_lo
  FROM mapped
),
-- Days no row covers: before the first range, between two ranges, after the last one.
gaps AS (
  SELECT subject_type, subject, CAST(NULL AS DATE) AS valid_from,
    IF(lo > DATE '0001-01-01', DATE_SUB(lo, INTERVAL 1 DAY), NULL) AS valid_to
  FROM bounds
  WHERE prev_hi IS NULL AND lo > DATE '0001-01-01'
  UNION ALL
  SELECT subject_type, subject,
    IF(prev_hi < DATE '9999-12-31', DATE_ADD(prev_hi, INTERVAL 1 DAY), NULL),
    IF(lo > DATE '0001-01-01', DATE_SUB(lo, INTERVAL 1 DAY), NULL)
  FROM bounds
  WHERE prev_hi IS NOT NULL AND DATE_DIFF(lo, prev_hi, DAY) > 1
  UNION ALL
  SELECT subject_type, subject,
    IF(hi < DATE '9999-12-31', DATE_ADD(hi, INTERVAL 1 DAY), NULL),
    CAST(NULL AS DATE)
  FROM bounds
  WHERE next_lo IS NULL AND hi < DATE '9999-12-31'
)
SELECT subject_type, subject, valid_from, valid_to, team, cost_center, owner_email, basis
FROM mapped
UNION ALL
SELECT subject_type, subject, valid_from, valid_to, 'Unattributed', CAST(NULL AS STRING), CAST(NULL AS STRING),
  'gap'
FROM gaps
ORDER BY subject_type, subject, valid_from NULLS FIRST
