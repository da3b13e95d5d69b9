-- Team and cost centre of one e-mail, API key (id or name) or workspace on one day; 'Unattributed' when nothing maps it (the join every mart uses).
-- params: subject_type STRING, subject STRING, on_date DATE
SELECT
  @subject_type AS subject_type,
  @subject AS subject,
  @on_date AS on_date,
  COALESCE(a.team, 'Unattributed') AS team,
  a.cost_center,
  a.owner_email,
  COALESCE(a.basis, 'unknown') AS basis
FROM (SELECT 1 AS probe) AS one
LEFT JOIN ref.attribution AS a
  ON a.subject_type = @subject_type
  AND a.subject = IF(@subject_type = 'email', LOWER(TRIM(@subject)), @subject)
  AND (a.valid_from IS NULL OR @on_date >= a.valid_from)
  AND (a.valid_to IS NULL OR @on_date <= a.valid_to)
