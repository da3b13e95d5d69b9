"""`make run`: the main job end to end on the embedded default, through Airflow.

Starts the vendor simulators for a synthetic organisation on loopback, points the Airflow connections
at them, runs the DAGs with `dag.test()` (the real task code paths, in-process), then prints what landed.
Airflow's own task logs go to `.ai_usage/logs/make-run.log`; the terminal shows the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sandbox.airflow_env import ROOT, configure, run_dag

LOG = ROOT / ".ai_usage" / "logs" / "make-run.log"


@contextlib.contextmanager
def logs_to_file(path: Path) -> Iterator[None]:
    """Send everything written to stdout/stderr (Airflow's task logs included) to `path` meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a") as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def step(title: str, dag_id: str, conf: dict[str, Any] | None = None) -> None:
    print(f"== {title}", flush=True)
    started = time.monotonic()
    try:
        with logs_to_file(LOG):
            run_dag(dag_id, conf)
    except Exception as exc:
        print(f"   FAILED: {exc}\n   full log: {LOG}", flush=True)
        raise SystemExit(1) from exc
    print(f"   {dag_id} succeeded in {time.monotonic() - started:.1f} s", flush=True)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r.get(c) if r.get(c) is not None else "-")) for r in rows)) for c in columns]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out.append("  ".join(str(r.get(c) if r.get(c) is not None else "-").ljust(w)
                             for c, w in zip(columns, widths, strict=True)))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--days", type=int, default=30, help="days of history to backfill")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--end", type=date.fromisoformat, default=None,
                        help="last day of the synthetic history (YYYY-MM-DD, UTC); default yesterday")
    args = parser.parse_args(argv)

    configure()
    logging.basicConfig(level=logging.WARNING)
    from ai_usage import bootstrap, settings
    from ai_usage.warehouse import get_warehouse
    from sandbox.org import Organisation
    from sandbox.sheet_hostile import export_demo_sheet
    from sandbox.stack import LocalStack

    LOG.parent.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    org = Organisation.generate(seed=args.seed, people=args.people, days=max(args.days, 60), end=args.end)
    # The people-maintained Sheet, as the CSV-folder backend: the organisation's tabs plus a blank row and
    # documented hostile rows (runbook/sheet.md). Fresh each run: ingest_sheets appends discovered keys to it.
    sheet_dir = ROOT / ".ai_usage" / "sheet"
    shutil.rmtree(sheet_dir, ignore_errors=True)
    export_demo_sheet(org, sheet_dir)
    os.environ["AI_USAGE_SHEET"] = "file:///.ai_usage/sheet"
    print("ai-usage local run (embedded default: vendor simulators on loopback, DuckDB, CSV sheet)")
    for key, value in settings.describe().items():
        print(f"  {key:<22} {value}")

    # At least --days, and always the whole previous month, so the executive summary has a full month.
    end = org.end
    previous_month = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
    start = min(end - timedelta(days=args.days - 1), previous_month)
    print(f"  synthetic organisation: {len(org.people)} people, seed {args.seed}; "
          f"backfilling {start} → {end} ({(end - start).days + 1} days)\n")

    # The synthetic organisation's Default Workspace holds only developer tooling (one personal Claude Code
    # key), which is configuration a deployment would make too (runbook: platform rules).
    os.environ.setdefault("AI_USAGE_CLAUDE_CODE_WORKSPACES", "Claude Code,Default Workspace")
    with LocalStack(org, ["cursor", "anthropic", "alerts"]) as stack:
        for name, server in stack.servers.items():
            print(f"  simulator {name:<10} {server.url}")
        print()
        step("setup_warehouse: create every table from its contract", "setup_warehouse")
        conf = {"start": start.isoformat(), "end": end.isoformat()}
        step("ingest_sheets: people, API-key owners, seat prices, claude.ai usage", "ingest_sheets")
        step(f"ingest_cursor: backfill {conf}", "ingest_cursor", conf)
        step(f"ingest_claude: backfill {conf}", "ingest_claude", conf)
        step("ingest_sheets: again, to write back the API keys ingest_claude discovered", "ingest_sheets")
        step(f"refresh_marts: GX suites, coverage, marts and reconciliation of {conf}", "refresh_marts", conf)
        alerts = stack.app("alerts").texts()
        logging.getLogger("sandbox").setLevel(logging.WARNING)

    for name in ("ai_usage", "sandbox"):  # Airflow's logging set-up re-enabled INFO; the summary is enough
        logging.getLogger(name).setLevel(logging.WARNING)
    print("\n== warehouse inventory (rows and date coverage per table)")
    print(bootstrap.format_inventory(bootstrap.inventory_rows()))
    with get_warehouse() as wh:
        platforms = wh.query(
            "SELECT platform, COUNT(DISTINCT cost_date) AS days, SUM(amount_usd) AS billed_usd "
            "FROM raw.anthropic_costs GROUP BY platform ORDER BY platform")
        coverage = wh.run_sql_file("ops/select_source_coverage_summary.sql")
        quarantined = wh.query(
            "SELECT source, target_table, record_ref, reason FROM ops.quarantine ORDER BY source, record_ref")
        runs = wh.run_sql_file("ops/select_ingestion_runs_latest.sql")
    print("\n== Anthropic bill by platform (raw.anthropic_costs; only developer tooling is allocated to teams)")
    print(table(platforms, ["platform", "days", "billed_usd"]))
    print(f"\n== quarantined input rows (ops.quarantine): {len(quarantined)}")
    if quarantined:
        print(table(quarantined[:20], ["source", "target_table", "record_ref", "reason"]))
    discovered = [ln for ln in (sheet_dir / "api_key_owners.csv").read_text().splitlines() if "discovered" in ln]
    print(f"\n== alerts the DAGs sent (to the local Slack-webhook stand-in): {len(alerts)}")
    for text in alerts:
        first = text.splitlines()[0] if text else ""
        print(f"  - {first[:150]}")
    print(f"\n== unmapped API keys written back to {sheet_dir / 'api_key_owners.csv'}: {len(discovered)}")
    for line in discovered:
        print("  " + line)
    print("\n== source coverage (ops.source_coverage)")
    print(table(coverage, list(coverage[0]) if coverage else ["source"]))
    print("\n== latest ingestion runs (ops.ingestion_runs)")
    cols = ["dag_id", "task_id", "status", "rows_loaded", "rows_quarantined", "api_calls", "retries", "duration_s"]
    print(table(runs, [c for c in cols if not runs or c in runs[0]]))
    last_full = (end.replace(day=1) - timedelta(days=1)).replace(day=1)
    with get_warehouse() as wh:
        summary = wh.run_sql_file("marts/select_exec_summary.sql", {"month": last_full})
        dq = wh.query("SELECT suite, level, status, COUNT(*) AS checks FROM ops.dq_results "
                      "GROUP BY suite, level, status ORDER BY suite, level, status")
        allocation = wh.query(
            "SELECT tool, cost_kind, SUM(amount_usd) AS amount_usd, "
            "SUM(CASE WHEN team = 'Unattributed' THEN amount_usd ELSE 0 END) AS unattributed_usd "
            "FROM marts.monthly_cost_allocation WHERE month = @month GROUP BY tool, cost_kind ORDER BY tool, cost_kind",
            {"month": last_full})
    print(f"\n== executive summary of {last_full:%B %Y} (marts.exec_monthly)")
    for key, value in (summary[0] if summary else {"month": "no data for the month"}).items():
        print(f"  {key:<30} {value if value is not None else '-'}")
    print(f"\n== cost allocation of {last_full:%B %Y} (marts.monthly_cost_allocation)")
    print(table(allocation, ["tool", "cost_kind", "amount_usd", "unattributed_usd"]))
    print("\n== data-quality and reconciliation checks (ops.dq_results)")
    print(table(dq, ["suite", "level", "status", "checks"]))

    from ai_usage.dashboards.render import render_report

    pages = render_report(ROOT / ".ai_usage" / "report")
    print(f"\n== dashboards: open {pages[0]} ({len(pages) - 1} dashboards, rendered from the marts)")
    print(f"\nAirflow task logs: {LOG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
