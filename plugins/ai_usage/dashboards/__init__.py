"""The four dashboards as code: specs in include/dashboards, provisioned into Metabase, rendered to HTML.

- `spec`: load and validate the specs (cards = SQL template + visual + filters);
- `template`: the one-SQL-text convention shared by Metabase and the local report;
- `render`: the self-contained HTML report (`render_report`), run on the configured warehouse;
- `provision` (+ `payloads`, `target`, `metabase_hook`, `export`): idempotent provisioning through
  Metabase's REST API; `service` holds the steps the DAG and the command line run.

Command line: ``python -m ai_usage.dashboards validate|render|provision|export-marts|sql`` (``--help``).
"""
