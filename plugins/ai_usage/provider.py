"""Airflow provider entry point (``apache_airflow_provider``) so the package's connection types appear in the UI.

Airflow discovers this through the package's entry point (pyproject.toml), which needs the package installed
(`pip install -e .`), not merely on `sys.path`. Each vendor hook registers its connection type in
`CONNECTION_TYPES`.
"""

from __future__ import annotations

from typing import Any

from ai_usage import __version__

HOOK_MODULES: list[str] = ["ai_usage.hooks.cursor", "ai_usage.hooks.anthropic", "ai_usage.dashboards.metabase_hook"]

# The connection forms, declared here as data (Airflow >= 3.2 reads "ui-field-behaviour" from the provider
# info without importing the hooks); the hooks' get_ui_field_behaviour() returns the same dicts.
CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "hook-class-name": "ai_usage.hooks.cursor.CursorAdminHook",
        "connection-type": "cursor_admin",
        "hook-name": "Cursor Admin API",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "Base URL", "password": "API key"},
            "placeholders": {
                "host": "https://api.cursor.com",
                "password": "Admin API key (key_... or crsr_... with scope admin:*)",
            },
        },
    },
    {
        "hook-class-name": "ai_usage.hooks.anthropic.AnthropicAdminHook",
        "connection-type": "anthropic_admin",
        "hook-name": "Anthropic Admin API",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login"],
            "relabeling": {"host": "Base URL", "password": "Admin API key", "extra": "Headers (optional)"},
            "placeholders": {
                "host": "https://api.anthropic.com",
                "password": "sk-ant-admin01-...",
                "extra": '{"anthropic_version": "2023-06-01", "anthropic_beta": ""}',
            },
        },
    },
    {
        "hook-class-name": "ai_usage.dashboards.metabase_hook.MetabaseHook",
        "connection-type": "metabase",
        "hook-name": "Metabase",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port"],
            "relabeling": {"host": "Metabase URL", "login": "Login e-mail (empty: API key)",
                           "password": "Password or API key", "extra": "Options (JSON)"},
            "placeholders": {
                "host": "https://metabase.example.com",
                "login": "ai-usage-provisioner@example.com",
                "extra": '{"bigquery_project": "my-project", "bigquery_service_account_json": "{...}", '
                         '"subscription_emails": ["finance@example.com"]}',
            },
        },
    },
]


def ui_field_behaviour(conn_type: str) -> dict[str, Any]:
    """The connection form of `conn_type` in the shape of the hooks' get_ui_field_behaviour()."""
    for entry in CONNECTION_TYPES:
        if entry["connection-type"] == conn_type:
            behaviour = entry["ui-field-behaviour"]
            return {
                "hidden_fields": list(behaviour["hidden-fields"]),
                "relabeling": dict(behaviour["relabeling"]),
                "placeholders": dict(behaviour["placeholders"]),
            }
    raise KeyError(f"no connection type {conn_type!r} in ai_usage.provider.CONNECTION_TYPES")


def get_provider_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "package-name": "ai-usage",
        "name": "AI usage ledger",
        "description": "Hooks and connection types for the Cursor Admin API, the Anthropic Admin API and Metabase.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "AI usage ledger",
                "external-doc-url": "https://cursor.com/docs/account/teams/admin-api",
                "tags": ["service"],
            }
        ],
        "connection-types": list(CONNECTION_TYPES),
    }
    if HOOK_MODULES:
        info["hooks"] = [{"integration-name": "AI usage ledger", "python-modules": list(HOOK_MODULES)}]
    return info
