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


def scenario(days: int, wall: float, peak: float, plain: dict[str, Any] | None) -> dict[str, Any]:
    return {"days": days, "conf": {"start": "2026-01-01", "end": "2026-12-31"}, "pipeline": plain,
            "sim_warm_up": {"total_s": 3.0, "spend_s": 1.0, "daily_usage_s": 1.0, "claude_code_s": 0.9,
                            "cost_report_s": 0.1},
            **measured(wall, peak, 600_000)}


def test_targets_judge_the_airflow_run_and_the_plain_run_separately() -> None:
    startup = {"wall_s": 5.0, "peak_kib": 120 * MIB}
    fixed = {"wall_s": 15.0, "peak_kib": 235 * MIB, "task_runner_s": 8.0, "task_runner_kib": 95 * MIB}
    plain_year = measured(24.0, 310, 600_000, tasks=[{"task_id": "daily_usage", "duration_s": 9.5, "rows": 490_000,
                                                       "peak_rss_kib": 300 * MIB}])
    figures = [report.scenario_figures(scenario(30, 20.0, 400, measured(8.0, 290, 50_000)), startup, fixed),
               report.scenario_figures(scenario(365, 40.0, 432, plain_year), startup, fixed)]
    assert figures[1]["excl_airflow_s"] == 25.0
    assert figures[1]["pipeline"]["rows_per_s"] == 25_000.0
    verdicts = {t.what: (t.value, t.verdict) for t in report.targets(figures, {"after_import_airflow_s": 0.6})}
    assert verdicts["365-day backfill through Airflow (dag.test), wall time of the whole process"] == ("40.0 s", "MISS")
    assert verdicts["365-day backfill through Airflow (dag.test), peak RSS"] == ("432 MiB", "PASS")
    assert verdicts["365-day backfill, the same streams without Airflow, wall time"] == ("24.0 s", "PASS")
    assert verdicts["365-day backfill, the same streams without Airflow, peak RSS"] == ("310 MiB", "PASS")
    assert verdicts["memory flat in the range: peak 365 d / peak 30 d"] == ("1.080 (400 → 432 MiB)", "PASS")
    assert verdicts["parse all of dags/ beyond `import airflow`"] == ("0.60 s", "PASS")


def test_memory_flatness_is_shown_to_the_precision_it_is_judged_at() -> None:
    startup = {"wall_s": 5.0, "peak_kib": 120 * MIB}
    fixed = {"wall_s": 15.0, "peak_kib": 235 * MIB, "task_runner_s": 8.0, "task_runner_kib": 95 * MIB}
    figures = [report.scenario_figures(scenario(30, 20.0, 400, None), startup, fixed),
               report.scenario_figures(scenario(365, 30.0, 440.5, None), startup, fixed)]
    verdicts = {t.what: (t.value, t.verdict) for t in report.targets(figures, {})}
    assert verdicts["memory flat in the range: peak 365 d / peak 30 d"] == ("1.101 (400 → 440 MiB)", "MISS")


def test_without_a_plain_run_only_the_airflow_targets_are_judged() -> None:
    startup = {"wall_s": 5.0, "peak_kib": 120 * MIB}
    fixed = {"wall_s": 15.0, "peak_kib": 235 * MIB, "task_runner_s": 8.0, "task_runner_kib": 95 * MIB}
    figures = [report.scenario_figures(scenario(365, 24.5, 460, None), startup, fixed)]
    verdicts = {t.what: t.verdict for t in report.targets(figures, {})}
    assert verdicts["365-day backfill through Airflow (dag.test), wall time of the whole process"] == "PASS"
    assert verdicts["365-day backfill through Airflow (dag.test), peak RSS"] == "MISS"
    assert not [w for w in verdicts if "without Airflow" in w]
