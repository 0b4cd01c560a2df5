"""optimize.py through its entry point: the report, the modes, and one clear line for every bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from journeynet.errors import InputError
from journeynet.planning.run import run_optimize
from planning_fixtures import UNITS, optimize_cfg, write_run


def _one_line_error(proc, out: Path) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ")
    for name in ("plan.csv", "plan.json", "report.html", "scenario.csv", "scenario.json"):
        assert not (out / name).exists(), name
    return lines[-1]


def test_default_run_writes_report_and_events_beside_the_train_run(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    proc = run_cli("optimize.py", f"run_dir={tiny_run}", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.html").stat().st_size > 10_000
    summary = json.loads((out / "plan.json").read_text())
    assert summary["model_checks"]["available"] in (True, False)
    assert "frontier" in summary and len(summary["allocation"]) == len(pd.read_csv(out / "plan.csv"))
    assert list((tiny_run / "tensorboard" / "optimize").glob("events.out.tfevents.*"))
    log = proc.stdout + proc.stderr
    assert "expected conversions" in log and "report:" in log


def test_revenue_objective_on_a_trained_run(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "rev"
    run_optimize(optimize_cfg(tiny_run, out, "budget.objective=revenue"))
    plan = pd.read_csv(out / "plan.csv")
    summary = json.loads((out / "plan.json").read_text())
    assert summary["objective"] == "revenue"
    assert summary["expected_revenue"] == pytest.approx(plan["expected_revenue"].sum(), abs=0.01 * len(plan))
    assert (plan["revenue_per_conversion"] > 0).all()
    assert "objective: revenue" in (out / "report.html").read_text()


@pytest.mark.parametrize("override,needle", [
    ("budget.total=200k", "budget.total must be a number >= 0, got '200k'"),
    ("budget.total=-5", "budget.total must be a number >= 0, got -5"),
    ("budget.horizon_days=0", "budget.horizon_days must be a number >= 1, got 0"),
], ids=["total-200k", "total-negative", "horizon-zero"])
def test_bad_budget_setting_is_one_line_naming_it(tmp_path: Path, override: str, needle: str) -> None:
    run = write_run(tmp_path / "run")
    out = tmp_path / "out"
    proc = run_cli("optimize.py", f"run_dir={run}", override, f"hydra.run.dir={out}")
    assert needle in _one_line_error(proc, out)
    assert not (run / "tensorboard").exists()


def test_corrupt_response_curves_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    (run / "response_curves.csv").write_bytes(b"\x89garbage\x00\x00;;\n\x01\x02")
    out = tmp_path / "out"
    line = _one_line_error(run_cli("optimize.py", f"run_dir={run}", f"hydra.run.dir={out}"), out)
    assert str(run / "response_curves.csv") in line


@pytest.mark.parametrize("rows,needle,cli", [
    ([("google_ads", "search", "12,5oo")], "row 1 (line 2), column spend: '12,5oo' is not a number >= 0", True),
    ([("google_ads", "search", "1000"), ("gogle_ads", "shopping", "500")],
     "row 2 (line 3): unknown unit gogle_ads/shopping", True),
    ([("google_ads", "search", "1000"), ("google_ads", "search", "500")], "google_ads/search appears twice", False),
], ids=["non-numeric-spend", "misspelled-channel", "duplicate-unit"])
def test_bad_scenario_file_names_file_row_and_column(tmp_path: Path, rows: list, needle: str, cli: bool) -> None:
    run = write_run(tmp_path / "run")
    path = tmp_path / "mine.csv"
    pd.DataFrame(rows, columns=["channel", "campaign_type", "spend"]).to_csv(path, index=False)
    out = tmp_path / "out"
    if not cli:
        with pytest.raises(InputError, match=re.escape(needle)) as err:
            run_optimize(optimize_cfg(run, out, f"scenario={path}"))
        assert str(path) in str(err.value)
        return
    line = _one_line_error(run_cli("optimize.py", f"run_dir={run}", f"scenario={path}", f"hydra.run.dir={out}"), out)
    assert needle in line and str(path) in line


@pytest.mark.parametrize("overrides,needle", [
    (["+budget.bounds={gogle_ads: [0, 5000]}"], "budget.bounds: unknown channel or campaign 'gogle_ads'"),
    (["+budget.bounds={google_ads: [5000]}"], "budget.bounds['google_ads'] must be [low, high]"),
    (["budget.objective=profit"], "budget.objective must be one of conversions, revenue, got 'profit'"),
    (["budget.target_roas=3"], "budget.target_roas needs budget.objective=revenue"),
    (["budget.target_cpa=5", "budget.target_roas=3"], "budget.target_cpa and budget.target_roas are both set"),
    (["response.bootstrap=two"], "response.bootstrap must be a whole number >= 0, got 'two'"),
    (["budget.target_cpa=0.0001"], "budget.target_cpa is not reached"),
], ids=["bounds-unknown", "bounds-shape", "objective", "roas-needs-revenue", "both-targets", "bootstrap",
        "cpa-unreachable"])
def test_bad_settings_raise_one_line_naming_the_setting(tmp_path: Path, overrides: list, needle: str) -> None:
    run = write_run(tmp_path / "run")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=re.escape(needle)) as err:
        run_optimize(optimize_cfg(run, out, *overrides))
    assert "\n" not in str(err.value)
    assert not out.exists() or not list(out.iterdir())


def test_scenario_scores_the_file_and_reports_it(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    names = sorted(UNITS)
    path = tmp_path / "mine.csv"
    pd.DataFrame({"channel": [u[0] for u in names], "campaign_type": [u[1] for u in names],
                  "spend": [80000.0, 60000.0, 40000.0, 20000.0]}).to_csv(path, index=False)
    out = tmp_path / "out"
    run_optimize(optimize_cfg(run, out, f"scenario={path}"))
    scored = json.loads((out / "scenario.json").read_text())
    h = 30
    want = sum(h * b * (x / h / k) ** a / (1 + (x / h / k) ** a)
               for (b, k, a, _, _), x in zip((UNITS[u] for u in names), (80000.0, 60000.0, 40000.0, 20000.0),
                                             strict=True))
    assert scored["expected_conversions"] == pytest.approx(want, rel=1e-12)
    assert scored["violations"] == []
    assert scored["optimal_plan_expected_conversions"] >= want - 0.01
    html = (out / "report.html").read_text()
    assert "Budget scenario" in html and 'id="planner-data"' in html
