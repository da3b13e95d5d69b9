-- Workspaces (id or name) that the Sheet's api_key_owners tab marks as developer tooling, for the platform rules.
SELECT DISTINCT workspace
FROM ref.api_key_owners
WHERE is_developer_tooling AND workspace IS NOT NULL
ORDER BY workspace
