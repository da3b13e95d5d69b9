"""Command line of the dashboards: ``python -m ai_usage.dashboards <command>``.

    validate                         load and check every spec (exit 1 with the problem otherwise)
    render [--out DIR] [--filter k=v ...]   write the HTML report (default .ai_usage/report)
    provision [--conn-id ID] [--update-credentials]   provision Metabase (Airflow connection metabase_default)
    export-marts [--out PATH]        DuckDB: write the marts-only file Metabase's DuckDB driver reads
    sql DASHBOARD CARD [--engine bigquery|duckdb|local]   print a card's SQL as it is sent
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ai_usage.exceptions import AiUsageError


def _filters(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--filter takes key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ai_usage.dashboards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check every spec")
    render = sub.add_parser("render", help="write the local HTML report")
    render.add_argument("--out", type=Path, default=None)
    render.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE")
    provision = sub.add_parser("provision", help="provision Metabase through its REST API")
    provision.add_argument("--conn-id", default=None)
    provision.add_argument("--update-credentials", action="store_true",
                           help="also send the warehouse credentials (after rotating the service-account key)")
    export = sub.add_parser("export-marts", help="write the marts-only DuckDB file for Metabase")
    export.add_argument("--out", type=Path, default=None)
    show = sub.add_parser("sql", help="print a card's SQL")
    show.add_argument("dashboard")
    show.add_argument("card")
    show.add_argument("--engine", choices=("bigquery", "duckdb", "local"), default="local")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    try:
        return _run(args)
    except AiUsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ai_usage.dashboards import service
    from ai_usage.dashboards.spec import load_specs

    if args.command == "validate":
        print(json.dumps(service.validate_specs(), indent=2))
    elif args.command == "render":
        from ai_usage.dashboards.local import parse_filter_values
        from ai_usage.dashboards.render import render_report

        specs = load_specs()
        paths = render_report(args.out, filters=parse_filter_values(_filters(args.filter), specs.filters),
                              specs=specs)
        print("\n".join(str(p) for p in paths))
    elif args.command == "provision":
        conn_id = args.conn_id or service.METABASE_CONN_ID
        service.export_for_metabase(conn_id)
        print(json.dumps(service.provision(conn_id, update_credentials=args.update_credentials), indent=2))
    elif args.command == "export-marts":
        from ai_usage.dashboards.export import export_marts
        from ai_usage.dashboards.target import DEFAULT_EXPORT, _path

        print(json.dumps(export_marts(args.out or _path(DEFAULT_EXPORT)), indent=2))
    elif args.command == "sql":
        card = load_specs().dashboard(args.dashboard).card(args.card)
        if args.engine == "bigquery":
            from ai_usage import settings

            config = settings.warehouse()
            dataset = config.dataset if isinstance(config, settings.BigQueryConfig) else (lambda d: f"ai_usage_{d}")
            print(card.template.for_bigquery(dataset))
        elif args.engine == "duckdb":
            print(card.template.for_duckdb())
        else:
            print(card.template.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
