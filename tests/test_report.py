"""report.html: self-contained, every section, escaped names, checks and intervals where the run has them."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from journeynet.errors import InputError
from journeynet.planning.run import run_optimize
from planning_fixtures import UNITS, optimize_cfg, write_run

VOID = {"meta", "input", "br", "img", "link", "hr", "col", "source", "wbr", "area", "base", "embed", "track"}
SVG_SELF = {"path", "circle", "line", "rect"}


class Collect(HTMLParser):
    """Tag balance, URL attributes, scripts, ids and visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.tags: list[str] = []
        self.scripts: list[tuple[dict, str]] = []
        self.text: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "xlink:href") and v]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "script":
            self._script = a
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data):
        if self._script is not None:
            self.scripts.append((self._script, data))
            self._script = None
        elif self.stack and self.stack[-1] not in ("style", "script"):
            self.text.append(data)


def parse(html: str) -> Collect:
    p = Collect()
    p.feed(html)
    p.close()
    return p


def run_report(tmp_path: Path, *overrides: str, units: dict | None = None,
               **run_kw) -> tuple[Path, dict, pd.DataFrame, str]:
    run = write_run(tmp_path / "run", units, **run_kw)
    out = tmp_path / "out"
    run_optimize(optimize_cfg(run, out, *overrides))
    summary = json.loads((out / "plan.json").read_text())
    return out, summary, pd.read_csv(out / "plan.csv", keep_default_na=False), (out / "report.html").read_text()


def test_report_is_valid_self_contained_html_with_every_section(tmp_path: Path) -> None:
    out, summary, plan, html = run_report(tmp_path)
    p = parse(html)
    assert p.errors == [] and p.stack == []
    assert p.tags.count("html") == 1 and "style" in p.tags
    assert not [u for u in p.urls if re.match(r"\s*(https?:)?//", u)], p.urls
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html)
    assert "@import" not in html and "url(" not in html
    order = [p.ids.index(s) for s in ("headline", "plan", "planner", "frontier", "curves", "attribution",
                                      "checks", "settings")]
    assert order == sorted(order)
    text = " ".join(p.text)
    assert f"{summary['expected_conversions']:,.1f}" in text
    assert "Model checks are not available" in text
    assert "The price of the constraints" in text and "channel floor" in text
    # the curves' history range and every planned unit beyond it are shown
    assert html.count('class="hist"') == len(UNITS)
    assert html.count("beyond history") >= 2 * int(plan["beyond_history"].astype(str).eq("True").sum())
    data = json.loads(next(body for attrs, body in p.scripts if attrs.get("id") == "planner-data"))
    assert [u["name"] for u in data["units"]] == [f"{c}/{t}" for c, t in sorted(UNITS)]
    assert data["units"][0]["beta"] == UNITS[sorted(UNITS)[0]][0]
    assert sum(u["plan"] for u in data["units"]) == pytest.approx(summary["total"], abs=0.005)


def test_plan_files_carry_allocation_rounding_binding_and_frontier(tmp_path: Path) -> None:
    weak_meta = {**UNITS, ("meta_ads", "social"): (0.5, 700.0, 0.7, 600.0, 60.0)}
    out, summary, plan, _ = run_report(tmp_path, "budget.total=60000", units=weak_meta)
    alloc = {(a["channel"], a["campaign_type"]): a["spend"] for a in summary["allocation"]}
    assert alloc == {(r.channel, r.campaign_type): r.spend for r in plan.itertuples()}
    assert round(sum(alloc.values()), 2) == 60000.00
    for col in ("spend", "expected_conversions", "marginal_cost_per_conversion", "current_scaled_spend"):
        assert (plan[col].astype(float).round(2) == plan[col].astype(float)).all(), col
    assert "binding" in plan and "checks" in plan
    # meta_ads has one campaign worth little: held at the 10% channel floor, named so
    row = plan.set_index(["channel", "campaign_type"]).loc[("meta_ads", "social")]
    assert float(row["spend"]) == pytest.approx(6000.0, abs=0.01)
    assert row["binding"] == "channel floor"
    assert [f["multiple"] for f in summary["frontier"]] == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    one = next(f for f in summary["frontier"] if f["multiple"] == 1.0)
    assert one["expected_conversions"] == pytest.approx(summary["expected_conversions"], rel=1e-6)
    prices = {p["constraint"]: p for p in summary["price_of_constraints"]}
    assert prices["channel floor"]["gain"] > 0


def test_hostile_names_show_as_text_and_keep_the_json_intact(tmp_path: Path) -> None:
    evil = '<img src=x onerror=alert(1)>'
    quote = 'q"uo\'te</script><script>alert(2)</script>'
    units = {(evil, "search"): (30.0, 1000.0, 0.8, 1500.0, 90.0), ("meta_ads", quote): (20.0, 800.0, 0.8, 900.0, 70.0)}
    run = write_run(tmp_path / "run", units)
    out = tmp_path / "out"
    run_optimize(optimize_cfg(run, out))
    html = (out / "report.html").read_text()
    p = parse(html)
    assert p.errors == [] and p.stack == []
    assert "img" not in p.tags
    assert "<img" not in html and "<script>alert" not in html
    # two scripts only: the embedded JSON (inert) and the planner's code, which holds no user text
    assert len(p.scripts) == 2
    assert [a.get("type") for a, _ in p.scripts] == ["application/json", None]
    assert "alert(" not in p.scripts[1][1] and "<" not in p.scripts[0][1]
    assert evil in " ".join(p.text) and quote in " ".join(p.text)
    data = json.loads(next(body for attrs, body in p.scripts if attrs.get("id") == "planner-data"))
    assert {u["channel"] for u in data["units"]} == {evil, "meta_ads"}
    assert {u["campaign_type"] for u in data["units"]} == {"search", quote}


def test_posterior_draws_give_the_headline_interval_and_checks_mark_failing_units(tmp_path: Path) -> None:
    out, summary, plan, html = run_report(tmp_path, draws=30, checks=True, failing=("meta_ads/social",))
    lo, hi = summary["interval"]["uplift_90"]
    assert lo <= summary["uplift"] <= hi and lo < hi
    assert summary["draws"]["replicates"] == 30 and "posterior draws" in summary["interval"]["what"]
    assert summary["model_checks"]["passed"] is False
    assert summary["model_checks"]["planned_units_failing"] == ["meta_ads/social"]
    status = dict(zip(plan["channel"] + "/" + plan["campaign_type"], plan["checks"], strict=True))
    assert status == {"google_ads/search": "ok", "google_ads/shopping": "ok", "meta_ads/social": "fail",
                      "microsoft_ads/search": "ok"}
    assert {"expected_conversions_low", "expected_conversions_high"} <= set(plan.columns)
    assert (plan["expected_conversions_low"] <= plan["expected_conversions"] + 0.01).all()
    text = " ".join(parse(html).text)
    assert "posterior draws" in text and "failing: meta_ads/social" in text
    # predicted vs observed: total, its held-out backtest, and each unit
    assert html.count('class="pred"') == 2 + len(UNITS) and "total (held-out backtest)" in text
    assert 'class="period holdout"' in html


def test_bootstrap_interval_lands_in_plan_csv_and_report(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    pts = []  # rollout points from the known curves, so the refits have something to fit
    for (ch, ct), (beta, k, a, mean, _) in UNITS.items():
        for m in (0, 0.25, 0.5, 1, 1.5, 2, 3):
            s = m * mean
            pts.append({"channel": ch, "campaign_type": ct, "spend_multiple": m, "daily_spend": s,
                        "expected_conversions": beta * (s / k) ** a / (1 + (s / k) ** a)})
    pd.DataFrame(pts).to_csv(run / "response_points.csv", index=False)
    out = tmp_path / "out"
    run_optimize(optimize_cfg(run, out, "response.bootstrap=4"))
    summary = json.loads((out / "plan.json").read_text())
    plan = pd.read_csv(out / "plan.csv")
    assert summary["bootstrap"]["replicates"] == 4
    assert (plan["expected_conversions_low"] <= plan["expected_conversions_high"]).all()
    assert 'class="band"' in (out / "report.html").read_text()


@pytest.mark.parametrize("name,content,needle", [
    ("response_curves.csv", "\x00\x01garbage;;\n\xff", "response_curves.csv"),
    ("response_curves.csv", "channel,campaign_type,beta,k,a,spend_max\ng,s,abc,1,1,5\n", "column beta"),
    ("daily_units.csv", "date,channel,campaign_type,spend\nnot-a-date,g,s,1\n", "column date"),
    ("attribution.csv", "just one column\nx\n", "attribution.csv: missing column"),
    ("metrics.json", "{not json", "metrics.json: not valid JSON"),
    ("response_draws.csv", "draw,channel,campaign_type,beta,k,a\n0,google_ads,search,1,-3,1\n", "column k"),
    ("model_checks.csv", "date,series,observed\n2024-01-01,total,3\n", "model_checks.csv: missing column"),
], ids=["curves-garbage", "curves-text-beta", "daily-bad-date", "attribution-columns", "metrics-json",
        "draws-negative-k", "checks-columns"])
def test_corrupt_run_file_names_the_file_and_writes_nothing(tmp_path: Path, name: str, content: str,
                                                            needle: str) -> None:
    run = write_run(tmp_path / "run")
    (run / name).write_bytes(content.encode("latin-1"))
    out = tmp_path / "out"
    with pytest.raises(InputError, match=re.escape(needle)) as err:
        run_optimize(optimize_cfg(run, out))
    assert "\n" not in str(err.value) and name in str(err.value)
    assert not out.exists() or not list(out.iterdir())


def test_a_plan_that_does_not_beat_the_current_mix_says_so_in_words(tmp_path: Path) -> None:
    # the current mix is near-optimal and spends almost nothing on two worthless channels; the 10% channel
    # floors force money onto them, so the plan must lose to the current mix scaled to the same budget
    units = {("google_ads", "search"): (40.0, 1500.0, 0.8, 2500.0, 100.0),
             ("google_ads", "shopping"): (40.0, 1500.0, 0.8, 2500.0, 100.0),
             ("meta_ads", "social"): (0.01, 700.0, 0.7, 30.0, 100.0),
             ("microsoft_ads", "search"): (0.01, 400.0, 0.85, 30.0, 100.0)}
    out, summary, plan, html = run_report(tmp_path, units=units)
    assert summary["improves_on_current"] is False and summary["uplift"] < 0
    assert summary["sentence"].startswith("The plan does not beat the current mix scaled to the same budget")
    assert summary["sentence"] in " ".join(parse(html).text)
    prices = {p["constraint"]: p for p in summary["price_of_constraints"]}
    assert prices["channel floor"]["gain"] > -summary["uplift"] * summary["current_scaled_expected_conversions"] * 0.5


def test_target_cpa_run_plans_the_total_it_found_and_says_so(tmp_path: Path) -> None:
    out, summary, plan, html = run_report(tmp_path, "budget.target_cpa=400")
    target = summary["target"]
    assert target["setting"] == "budget.target_cpa=400"
    assert summary["total"] == target["total"] == pytest.approx(plan["spend"].sum(), abs=0.005)
    assert target["marginal_reached"] == pytest.approx(400.0, rel=0.005)
    assert "Target mode: the budget at which one more conversion costs 400.00" in " ".join(parse(html).text)


def test_a_promise_over_engine_draws_says_what_its_interval_leaves_out_and_names_the_largest_cut(
        tmp_path: Path) -> None:
    _, summary, plan, _ = run_report(tmp_path, draws=30)
    cut = summary["largest_cut"]
    names = plan["channel"] + "/" + plan["campaign_type"]
    drop = dict(zip(names, plan["current_scaled_spend"] - plan["spend"], strict=True))
    assert cut["unit"] == max(drop, key=drop.get) and drop[cut["unit"]] > 0
    assert cut["current_scaled"] - cut["plan"] == pytest.approx(drop[cut["unit"]], abs=0.01)
    assert "none of its model's error" in summary["sentence"]
    assert f"test the largest cut, {cut['unit']} (" in summary["sentence"]


def test_without_engine_draws_the_sentence_claims_no_engine_interval(tmp_path: Path) -> None:
    _, summary, _, _ = run_report(tmp_path)
    assert summary["improves_on_current"] and "interval" not in summary["sentence"]
    assert summary["largest_cut"] is not None
