"""A streamed lake answers every touchpoint question as the frame read from it does, to the byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import TINY, run_cli
from journeynet.causal.data import build_funnel_data, spend_matrix
from journeynet.data.inputs import load_inputs, load_touchpoints
from journeynet.data.touchsource import TouchFrame, TouchLake, sample_hash
from journeynet.errors import InputError
from journeynet.net_free import daily_units
from test_partition import touchpoints, write_lake
from test_readme import run_entry


def _spend(frame: pd.DataFrame) -> pd.DataFrame:
    """Daily spend of the paid units of test_partition's touchpoints (Meta's blank campaign joins 'social')."""
    days = pd.date_range("2024-01-05", "2024-03-20", freq="D")  # touches fall on both sides of the window
    units = [("google_ads", "search"), ("google_ads", "shopping"), ("meta_ads", "social")]
    rng = np.random.default_rng(1)
    return pd.DataFrame([{"date": d, "channel": c, "campaign_type": k, "spend": float(rng.uniform(10, 50))}
                         for d in days for c, k in units])


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The frame loaded whole (data.stream=false) and the same files streamed, with a spend file."""
    root = tmp_path_factory.mktemp("lake")
    lake = write_lake(touchpoints(600, seed=3), root / "tp", n_files=4)  # the last 25 rows repeat file 0's
    spend_file = root / "spend.csv"
    _spend(load_touchpoints(lake)).to_csv(spend_file, index=False)
    data = {"source": "csv", "touchpoints": str(lake), "spend": str(spend_file), "journeys": str(root / "store")}
    frame = load_inputs({**data, "stream": False}, (150, 7))
    streamed = load_inputs(data, (150, 7))
    assert frame.touchpoints is not None and streamed.touchpoints is None
    assert isinstance(frame.touches, TouchFrame) and isinstance(streamed.touches, TouchLake)
    return frame, streamed


def test_the_customer_sample_is_the_same_customers_and_rows(both) -> None:
    frame, streamed = both
    _, dates, _ = spend_matrix(frame.spend)
    a = frame.touches.funnel_rows(dates[0], len(dates), 150, 7)
    b = streamed.touches.funnel_rows(dates[0], len(dates), 150, 7)
    pd.testing.assert_frame_equal(a.rows.reset_index(drop=True), b.rows.reset_index(drop=True))
    assert (a.n_customers, a.outside) == (b.n_customers, b.outside) and a.outside > 0
    # the sample is the 150 customers of smallest seeded hash among those with a touch in the window
    assert a.rows["customer_id"].nunique() == 150 < a.n_customers
    tp = frame.touchpoints
    inside = tp[(tp["timestamp"] >= dates[0]) & (tp["timestamp"] < dates[-1] + pd.Timedelta(days=1))]
    ids = inside["customer_id"].unique()
    chosen = set(ids[np.argsort(sample_hash(pd.Series(ids), 7))[:150]])
    assert set(a.rows["customer_id"]) == chosen
    # asked for another sample, the lake reads its files again and still agrees
    c = streamed.touches.funnel_rows(dates[0], len(dates), 90, 8)
    pd.testing.assert_frame_equal(frame.touches.funnel_rows(dates[0], len(dates), 90, 8).rows.reset_index(drop=True),
                                  c.rows.reset_index(drop=True))
    # and the funnel's event tables built from either are the same
    fa, fb = build_funnel_data(frame.touches, frame.spend, 150, 7), build_funnel_data(streamed.touches,
                                                                                       streamed.spend, 150, 7)
    for name in ("first_day", "conv_day", "conv_route", "paid", "unpaid", "customer"):
        assert np.array_equal(getattr(fa, name), getattr(fb, name)), name
    assert fa.sample_fraction == fb.sample_fraction == 150 / a.n_customers


def test_counts_revenue_and_digest_are_the_same(both) -> None:
    frame, streamed = both
    a, b = frame.touches, streamed.touches
    assert (a.rows, a.conversions, a.digest) == (b.rows, b.conversions, b.digest)
    assert a.rows == len(frame.touchpoints)  # the lake's cross-file duplicates were dropped, as the loader drops them
    for ask in ("units", "daily_counts", "conversion_routes"):
        pd.testing.assert_frame_equal(getattr(a, ask)(), getattr(b, ask)())
    table = pd.DataFrame({"channel": ["google_ads", "google_ads", "meta_ads"],
                          "campaign_type": ["search", "shopping", "social"], "attributed_conversions": [5.0, 3.0, 2.0]})
    pd.testing.assert_frame_equal(daily_units(a, frame.spend, table), daily_units(b, streamed.spend, table))
    # the counts are the frame's own groupby
    tp = frame.touchpoints.assign(date=frame.touchpoints["timestamp"].dt.normalize())
    expected = tp.groupby(["date", "channel", "campaign_type"]).size()
    assert np.array_equal(a.daily_counts().set_index(["date", "channel", "campaign_type"])["exposure"], expected)
    units = {("google_ads", "search"), ("meta_ads", "social"), ("email", "")}  # email is not a spend unit
    assert a.revenue_per_conversion(units) == b.revenue_per_conversion(units)
    pd.testing.assert_frame_equal(frame.unmatched, streamed.unmatched)


def test_a_bad_row_in_one_part_is_one_line_naming_that_file(tmp_path: Path, capsys) -> None:
    lake = write_lake(touchpoints(200, seed=5), tmp_path / "tp", n_files=3)
    bad_file = lake / "batch=1" / "part-0.parquet"
    part = pd.read_parquet(bad_file)
    part.loc[part.index[4], "customer_id"] = " "
    part.to_parquet(bad_file, index=False)
    data = {"source": "csv", "touchpoints": str(lake), "journeys": str(tmp_path / "store")}
    with pytest.raises(InputError, match=f"touchpoints file {bad_file}: column 'customer_id' has 1 empty"):
        load_inputs(data)
    # what load_inputs logged went to whatever handlers an earlier test's Hydra run left: not train.py's stderr
    capsys.readouterr()
    code = run_entry("train.py", ["data=csv", f"data.touchpoints={lake}", f"data.journeys={tmp_path / 'store'}",
                                  f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(bad_file) in err[0], err


def _without_times(d):
    if isinstance(d, dict):
        return {k: _without_times(v) for k, v in d.items() if "seconds" not in k}
    return d


def test_train_writes_the_same_files_from_the_frame_and_from_the_lake(tmp_path: Path) -> None:
    from journeynet.synthetic.simulate import SimConfig, simulate

    sim = simulate(SimConfig(pool=4000, days=70, seed=0), optimum=False)
    order = np.argsort(sim.touchpoints["timestamp"].to_numpy(), kind="stable")
    (tmp_path / "tp").mkdir()
    for i, rows in enumerate(np.array_split(order, 3)):  # time-ordered files, customers spread over them
        sim.touchpoints.take(np.sort(rows)).to_parquet(tmp_path / "tp" / f"part-{i}.parquet", index=False)
    sim.spend.to_csv(tmp_path / "spend.csv", index=False)
    tiny = [o for o in TINY if not o.startswith("data.synthetic")]
    data = ["data=csv", f"data.touchpoints={tmp_path / 'tp'}", f"data.spend={tmp_path / 'spend.csv'}"]
    runs = {}
    # the frame in one process; the lake with the second process, which receives the sample, not the frame
    for name, extra in (("frame", ["data.stream=false", "background=false"]), ("lake", ["background=true"])):
        runs[name] = tmp_path / name
        proc = run_cli("train.py", *tiny, *data, f"data.journeys={tmp_path / name / 'journeys'}", *extra,
                       f"hydra.run.dir={runs[name]}")
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the frame is not held" in (runs["lake"] / "train.log").read_text()
    names = sorted(p.name for p in runs["frame"].iterdir()
                   if p.suffix in (".csv", ".json") and p.name != "metrics.json")
    assert {"attribution.csv", "daily_units.csv", "response_curves.csv", "model_checks.csv",
            "funnel_params.json"} <= set(names)
    for name in names:
        assert (runs["lake"] / name).read_bytes() == (runs["frame"] / name).read_bytes(), name
    # metrics.json differs only in the seconds things took
    metrics = [_without_times(json.loads((runs[n] / "metrics.json").read_text())) for n in ("frame", "lake")]
    assert metrics[0] == metrics[1]
