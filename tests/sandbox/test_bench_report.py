"""sandbox.bench_report: figures and target verdicts from measured processes (no measurement runs here)."""

from __future__ import annotations

from typing import Any

from sandbox import bench_report as report

MIB = 1024


def measured(wall: float, peak_mib: float, rows: int, *, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    runs = [{"dag_id": "d", "task_id": "t", "endpoint": "e", "target_table": "raw.cursor_daily_usage",
             "status": "success", "rows_loaded": rows, "rows_quarantined": 0, "api_calls": 10, "retries": 0,
             "duration_s": wall}]
    return {"wall_s": wall, "peak_kib": int(peak_mib * MIB), "cpu_s": wall, "load": 0.5,
            "child": {"ingestion_runs": runs, "dags": [{"dag_id": "(pipeline)", "tasks": tasks or []}]},
            "sim": {"cursor": {"server_s": 1.0}}}


def deployed(wall: float, peak_mib: float, rows: int) -> dict[str, Any]:
    """A `sandbox.bench_deployed` result: the runs on a running Airflow and the warehouse read back."""
    task = {"task_id": "daily_usage", "state": "success", "marked": False, "duration_s": wall - 2,
            "start": "2026-12-07T10:00:01Z", "end": "2026-12-07T10:00:20Z", "peak_rss_kib": int(peak_mib * MIB)}
    return {"ok": True, "wall_s": wall, "runs_s": [wall - 1, wall, wall + 3], "peak_task_kib": int(peak_mib * MIB), "peak_tasks_sum_kib": 900 * MIB,
            "machine_busy_cpu_s": 2 * wall, "component_cpu_s": {"api-server": 3.0}, "sim": {"cursor": {"server_s": 2.0}},
            "component_peak_kib": {"scheduler": 340 * MIB}, "start_s": 25.0,
            "dags": [{"dag_id": "ingest_cursor", "state": "success", "tasks": [task]}],
            "child": measured(wall, peak_mib, rows)["child"]}


def scenario(days: int, wall: float, peak: float, plain: dict[str, Any] | None,
             on_airflow: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"days": days, "conf": {"start": "2026-01-01", "end": "2026-12-31"}, "pipeline": plain,
            "deployed": on_airflow,
            "sim_warm_up": {"total_s": 3.0, "spend_s": 1.0, "daily_usage_s": 1.0, "claude_code_s": 0.9,
                            "cost_report_s": 0.1},
            **measured(wall, peak, 600_000)}


STARTUP = {"wall_s": 5.0, "peak_kib": 120 * MIB}
FIXED = {"wall_s": 15.0, "peak_kib": 235 * MIB, "task_runner_s": 8.0, "task_runner_kib": 95 * MIB}
WALL = "365-day backfill on a running Airflow (LocalExecutor): trigger to done, median run"
PEAK = "365-day backfill on a running Airflow: peak RSS of its largest task process"
FLAT = "memory flat in the range: largest task's peak, 365 d / 30 d (running Airflow)"


def test_the_backfill_on_a_running_airflow_is_judged_and_the_other_runs_are_shown_for_comparison() -> None:
    plain_year = measured(24.0, 310, 600_000, tasks=[{"task_id": "daily_usage", "duration_s": 9.5, "rows": 490_000,
                                                       "peak_rss_kib": 300 * MIB}])
    figures = [report.scenario_figures(scenario(30, 20.0, 400, measured(8.0, 290, 50_000), deployed(12.0, 320, 50_000)),
                                       STARTUP, FIXED),
               report.scenario_figures(scenario(365, 40.0, 432, plain_year, deployed(26.0, 340, 600_000)),
                                       STARTUP, FIXED)]
    assert figures[1]["excl_airflow_s"] == 25.0
    assert figures[1]["pipeline"]["rows_per_s"] == 25_000.0
    assert figures[1]["deployed"]["rows_per_s"] == 600_000 / 26.0
    verdicts = {t.what: (t.value, t.verdict) for t in report.targets(figures, {"after_import_airflow_s": 0.6})}
    assert verdicts[WALL] == ("26.0 s", "MISS")
    assert verdicts[PEAK] == ("340 MiB", "PASS")
    assert verdicts[FLAT] == ("1.062 (320 → 340 MiB)", "PASS")
    comparisons = {w: v for w, v in verdicts.items() if w.startswith("  for comparison")}
    assert sorted(v for v, _ in comparisons.values()) == ["1.080 (400 → 432 MiB)", "24.0 s, 310 MiB", "40.0 s, 432 MiB"]
    assert {verdict for _, verdict in comparisons.values()} == {"info"}
    assert verdicts["parse all of dags/ beyond `import airflow`"] == ("0.60 s", "PASS")
    rendered = report.render({
        "machine": {"cpus": 2, "python": "3.11", "load_before": "0", "load_after": "0"}, "people": 2000, "seed": 7,
        "scope_note": "in", "parse_runs": [], "parse_summary": {}, "startup": STARTUP, "airflow": FIXED,
        "airflow_fixed": FIXED, "figures": figures, "targets": report.targets(figures, {}),
        "scenarios": [scenario(30, 20.0, 400, None), scenario(365, 40.0, 432, None)]})
    assert "on a running Airflow" in rendered and "largest task MiB" in rendered
    assert "ingest_cursor.daily_usage" in rendered
    assert "25.0 / 26.0 / 29.0" in rendered  # every run of the 365-day backfill, the median judged


def test_memory_flatness_is_shown_to_the_precision_it_is_judged_at() -> None:
    figures = [report.scenario_figures(scenario(30, 20.0, 400, None, deployed(12.0, 400, 1)), STARTUP, FIXED),
               report.scenario_figures(scenario(365, 40.0, 440, None, deployed(24.0, 440.4, 2)), STARTUP, FIXED)]
    verdicts = {t.what: (t.value, t.verdict) for t in report.targets(figures, {})}
    assert verdicts[FLAT] == ("1.101 (400 → 440 MiB)", "MISS")
    assert verdicts[WALL] == ("24.0 s", "PASS")


def test_without_the_running_airflow_nothing_about_the_backfill_is_judged() -> None:
    figures = [report.scenario_figures(scenario(30, 20.0, 400, None), STARTUP, FIXED),
               report.scenario_figures(scenario(365, 24.0, 460, None), STARTUP, FIXED)]
    verdicts = {t.what: t.verdict for t in report.targets(figures, {})}
    assert verdicts["365-day backfill on a running Airflow"] == "n/a"
    assert not [w for w, v in verdicts.items() if v in ("PASS", "MISS") and "backfill" in w]
    assert not [w for w in verdicts if "without Airflow" in w]
