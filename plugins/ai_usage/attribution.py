"""Attribution: the one mapping from an e-mail, an API key (id or name) or a workspace to team and cost centre.

`rebuild` refreshes ``ref.attribution`` from ``ref.people`` and ``ref.api_key_owners`` with
include/sql/ref/select_attribution.sql, after the sheets DAG has loaded them. Resolution, per day:

- an e-mail: its ``ref.people`` row (effective-dated; a person who changed team mid-month has one row per
  team, so each day resolves to the team of that day);
- an API key (by id, or by the name the Claude Code report uses) or a workspace: the team of its own
  ``ref.api_key_owners`` row; if that is blank, its owner's team in ``ref.people`` that day; if there is no
  owner either, the team of its workspace's own row;
- everything else — days outside every range, rows nobody filled, subjects nobody listed — is team
  ``Unattributed`` (`UNATTRIBUTED`), so unmapped spend stays visible instead of being dropped.

The ranges of one subject never overlap (the Sheet's validation rejects overlapping rows) and, for every
subject in the table, cover all days, so joining on (subject_type, subject) and the day finds at most
one row: ``COALESCE(team, 'Unattributed')`` handles subjects the table does not know
(include/sql/ref/select_attribution_on.sql is that join for one subject).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

log = logging.getLogger(__name__)

TABLE = "ref.attribution"
UNATTRIBUTED = "Unattributed"
SUBJECT_TYPES = ("email", "api_key_id", "api_key_name", "workspace")
BUILD_SQL = "ref/select_attribution.sql"
LOOKUP_SQL = "ref/select_attribution_on.sql"


def rebuild(warehouse: Any, *, run_id: str, now: datetime | None = None) -> dict[str, int]:
    """Replace ref.attribution with the resolution of the current ref tables; returns rows per basis."""
    stamp = now or datetime.now(UTC)
    warehouse.ensure_tables(["ref.people", "ref.api_key_owners", TABLE])
    rows = [{**row, "_ingested_at": stamp, "_run_id": run_id} for row in warehouse.run_sql_file(BUILD_SQL)]
    warehouse.replace_partitions(TABLE, rows, None)
    counts = dict(sorted(Counter(r["basis"] for r in rows).items()))
    log.info("%s rebuilt: %d rows %s", TABLE, len(rows), counts)
    return counts


def resolve(warehouse: Any, subject_type: str, subject: str, day: date) -> Mapping[str, Any]:
    """``{team, cost_center, owner_email, basis}`` of one subject on one day (Unattributed if unknown)."""
    if subject_type not in SUBJECT_TYPES:
        raise ValueError(f"subject_type must be one of {SUBJECT_TYPES}, not {subject_type!r}")
    rows = warehouse.run_sql_file(LOOKUP_SQL, {"subject_type": subject_type, "subject": subject, "on_date": day})
    if len(rows) != 1:  # the ranges of a subject must not overlap; more than one row is a bug upstream
        raise ValueError(f"{TABLE}: {len(rows)} rows for {subject_type} {subject!r} on {day}; expected one")
    return rows[0]
