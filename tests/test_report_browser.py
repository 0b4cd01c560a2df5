"""The report in a real browser: headless Chromium opens it from disk and the planner agrees with scenario=.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the ``playwright`` package
(``pip install -e ".[dev]"``); ``.ci/run`` installs both. Playwright drives the system
browser through ``executable_path``, so no browser download is needed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_cli
from journeynet.planning.run import run_optimize
from planning_fixtures import optimize_cfg, write_run


def _browser() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium on this machine (apt-get install -y chromium)")
    return path


def test_planner_in_chromium_matches_scenario_to_the_cent(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    exe = _browser()
    run = write_run(tmp_path / "run", checks=True, draws=10)
    out = tmp_path / "plan"
    run_optimize(optimize_cfg(run, out))
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"request {r.url}") if not r.url.startswith("file:") else None)
        page.goto((out / "report.html").as_uri())
        rows = page.locator("#planner-table tbody tr")
        assert rows.count() == 4
        plan_total = float(page.locator("#sc-conv").get_attribute("data-value"))
        summary = json.loads((out / "plan.json").read_text())
        assert plan_total == pytest.approx(summary["expected_conversions"], abs=0.005)
        assert page.locator("#sc-ok").is_visible()
        # move one slider (pointer drag, then a keyboard nudge) and type an amount in another box
        slider = rows.nth(0).locator("input.sl")
        slider.scroll_into_view_if_needed()
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
        slider.focus()
        page.keyboard.press("ArrowRight")
        rows.nth(2).locator("input.nb").fill("4321.09")
        rows.nth(2).locator("input.nb").press("Enter")
        spends = [float(rows.nth(i).locator("input.nb").input_value()) for i in range(4)]
        assert spends[2] == 4321.09
        assert abs(spends[0] - summary["allocation"][0]["spend"]) > 1000  # the drag moved it
        page_conv = float(page.locator("#sc-conv").get_attribute("data-value"))
        page_spend = float(page.locator("#sc-spend").get_attribute("data-value"))
        page_units = [float(rows.nth(i).locator(".conv").get_attribute("data-value")) for i in range(4)]
        broken = page.locator("#sc-violations li").all_inner_texts()
        shot = tmp_path / "report_planner.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")
        # rescale to the budget: the total holds to the cent again
        page.click("#btn-rescale")
        assert float(page.locator("#sc-spend").get_attribute("data-value")) == summary["total"]
        assert not any("budget.total" in t for t in page.locator("#sc-violations li").all_inner_texts())
        browser.close()
    assert errors == []
    names = [(a["channel"], a["campaign_type"]) for a in summary["allocation"]]
    scenario = pd.DataFrame({"channel": [n[0] for n in names], "campaign_type": [n[1] for n in names],
                             "spend": spends})
    scenario.to_csv(tmp_path / "mine.csv", index=False)
    proc = run_cli("optimize.py", f"run_dir={run}", f"scenario={tmp_path / 'mine.csv'}",
                   f"hydra.run.dir={tmp_path / 'scored'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    scored = json.loads((tmp_path / "scored" / "scenario.json").read_text())
    table = pd.read_csv(tmp_path / "scored" / "scenario.csv")
    assert round(page_spend, 2) == round(sum(spends), 2) == round(table["spend"].sum(), 2)
    assert abs(page_conv - scored["expected_conversions"]) < 0.01
    assert all(abs(p - s) <= 0.005 + 1e-9 for p, s in zip(page_units, table["expected_conversions"], strict=True))
    assert broken == scored["violations"] and broken  # the same constraints, in the same words
    assert (tmp_path / "scored" / "report.html").exists()
