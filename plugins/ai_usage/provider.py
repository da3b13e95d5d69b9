"""Airflow provider entry point (``apache_airflow_provider``) so the package's connection types appear in the UI.

Airflow discovers this through the package's entry point (pyproject.toml), which needs the package installed
(`pip install -e .`), not merely on `sys.path`. Source issues register their hooks in `CONNECTION_TYPES`.
"""

from __future__ import annotations

from typing import Any

from ai_usage import __version__

# Filled by the source hooks as they are added: one entry per custom connection type.
HOOK_MODULES: list[str] = []
CONNECTION_TYPES: list[dict[str, Any]] = []


def get_provider_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "package-name": "ai-usage",
        "name": "AI usage ledger",
        "description": "Hooks and connection types for the Cursor Admin API and the Anthropic Admin API.",
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
