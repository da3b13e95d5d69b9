-- Workspace id → name from the latest Anthropic workspaces snapshot (names the cost report's workspaces).
SELECT workspace_id, name
FROM raw.anthropic_workspaces
WHERE snapshot_date = (SELECT MAX(snapshot_date) FROM raw.anthropic_workspaces)
ORDER BY workspace_id
