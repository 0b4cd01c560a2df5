"""The calendar input (``model.calendar``): exact values, and every path carrying the same ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from journeynet.data.calendar import (
    N_CALENDAR,
    TO_END,
    TO_END_CAP_DAYS,
    WINDOW_POSITION,
    attached_calendar,
    calendar_window,
    journey_calendar,
    with_calendar,
)
from journeynet.data.journeys import Journeys, Vocab, build_journeys

D = 86_400_000_000_000  # one day in ns


def hand_journeys() -> Journeys:
    """Four journeys over days 0-100: (0, 10), (40,), (90, 99.5), (100,)."""
    time = np.array([0, 10, 40, 90, 99.5, 100]) * D
    offsets = np.array([0, 2, 3, 5, 6])
    n, m = len(offsets) - 1, len(time)
    return Journeys(
        channel=np.full(m, 2), campaign=np.full(m, 2), unit=np.full(m, 2), log_dt_prev=np.zeros(m, np.float32),
        log_dt_end=np.zeros(m, np.float32), position=np.array([0, 1, 0, 0, 1, 0]), time=time.astype(np.int64),
        offsets=offsets, label=np.zeros(n, np.int8), customer_id=np.array(list("abcd"), dtype=object),
        journey=np.zeros(n, np.int64), revenue=np.zeros(n), end_time=time[offsets[1:] - 1].astype(np.int64),
    )


def test_calendar_values_are_exact() -> None:
    j = hand_journeys()
    assert calendar_window(j) == (0, 100 * D)
    x = journey_calendar(j)
    assert x.shape == (4, N_CALENDAR) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, WINDOW_POSITION], [0.10, 0.40, 0.995, 1.0], rtol=1e-6)
    # days to the data's last touch (day 100): 90 and 60 are capped at 30
    np.testing.assert_allclose(np.expm1(x[:, TO_END]), [TO_END_CAP_DAYS, TO_END_CAP_DAYS, 0.5, 0.0], rtol=1e-5)
    # against another window: clamped to [0, 1]; the data's end is still the journeys' own
    y = journey_calendar(j, window=(20 * D, 60 * D))
    np.testing.assert_allclose(y[:, WINDOW_POSITION], [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(y[:, TO_END], x[:, TO_END])
    z = journey_calendar(j, data_end=110 * D)
    np.testing.assert_allclose(np.expm1(z[2:, TO_END]), [10.5, 10.0], rtol=1e-5)
    assert journey_calendar(j.subset(np.zeros(0, np.int64))).shape == (0, N_CALENDAR)
    assert calendar_window(j.subset(np.zeros(0, np.int64))) is None
    assert calendar_window(j, np.array([1, 2])) == (40 * D, int(99.5 * D))


def test_subsets_deletions_and_batches_keep_the_calendar_of_the_whole_set() -> None:
    from journeynet.attribution.tables import delete_unit
    from journeynet.model.features import collate_journeys, touch_features

    j = with_calendar(hand_journeys())
    sub = j.subset([2, 3])  # the two latest alone would span only days 90-100
    np.testing.assert_array_equal(sub.calendar, j.calendar[[2, 3]])
    np.testing.assert_array_equal(attached_calendar(sub), j.calendar[[2, 3]])
    assert not np.array_equal(journey_calendar(sub), j.calendar[[2, 3]])
    reduced, kept = delete_unit(j, 99)
    np.testing.assert_array_equal(reduced.calendar, j.calendar[kept])
    b = collate_journeys(j, touch_features(j), np.array([3, 0]))
    np.testing.assert_array_equal(b["calendar"].numpy(), j.calendar[[3, 0]])
    j.calendar = None  # not attached: against the window given, else the journeys' own span
    np.testing.assert_array_equal(attached_calendar(j), journey_calendar(j))
    np.testing.assert_array_equal(attached_calendar(j, (0, 50 * D)), journey_calendar(j, (0, 50 * D)))
    assert "calendar" not in collate_journeys(j, touch_features(j), np.array([0]))


def random_touchpoints(n_customers: int = 300, seed: int = 0, start: str = "2024-01-01") -> pd.DataFrame:
    """Touches over 200 days, 5% converting."""
    rng = np.random.default_rng(seed)
    n = 12 * n_customers
    return pd.DataFrame({
        "customer_id": rng.integers(0, n_customers, n).astype(str),
        "timestamp": pd.Timestamp(start) + pd.to_timedelta(rng.uniform(0, 200 * 24, n), unit="h"),
        "channel": rng.choice(["email", "search", "social"], n), "campaign_type": "",
        "converted": (rng.random(n) < 0.05).astype(np.int8), "revenue": 0.0,
    })


def test_store_shards_give_every_rank_the_calendar_of_the_in_memory_path(tmp_path: Path) -> None:
    from journeynet.data.engines import build_store_from_frame
    from journeynet.data.partition import concat_journeys, sort_by_customer
    from journeynet.data.store import read_manifest, store_window
    from journeynet.model.shards import ShardedJourneyDataModule, StoreForRun

    tp = random_touchpoints()
    memory = with_calendar(build_journeys(tp, Vocab.fit(tp)))
    build_store_from_frame(tp, tmp_path, None, 30, 50, 3)
    assert store_window(read_manifest(tmp_path)) == list(calendar_window(memory))
    assert StoreForRun(tmp_path).window() == list(calendar_window(memory))
    ranks = []
    for rank in (0, 1):  # each rank reads only its shards, yet places them in the whole store's window
        dm = ShardedJourneyDataModule(tmp_path, rank=rank, world_size=2)
        dm.setup()
        assert len(dm.shards) < 3
        batch = dm.inner.dataset[np.arange(3)]
        np.testing.assert_array_equal(batch["calendar"].numpy(), dm.journeys.calendar[:3])
        ranks.append(dm.journeys)
    stored = sort_by_customer(concat_journeys(ranks))
    np.testing.assert_array_equal(stored.customer_id, memory.customer_id)
    np.testing.assert_array_equal(stored.end_time, memory.end_time)
    np.testing.assert_array_equal(stored.calendar, memory.calendar)
    # a store written before the entries held first/last touch: the whole store's reader still agrees
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for s in manifest["shards"]:
        s.pop("first_touch", None), s.pop("last_touch", None)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert store_window(read_manifest(tmp_path)) is None
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"seed": 0, "data": {"lookback_days": 30, "max_len": 50, "val_fraction": 0.1,
                                                "test_fraction": 0.2, "split": "customer"}})
    _, whole, _ = StoreForRun(tmp_path).read(cfg)
    np.testing.assert_array_equal(sort_by_customer(whole).calendar, memory.calendar)


def test_a_held_out_file_is_placed_against_the_training_window() -> None:
    from omegaconf import OmegaConf

    from journeynet.model.training import make_journeys, run_window

    train_tp, later = random_touchpoints(80), random_touchpoints(40, seed=1, start="2024-05-01")
    cfg = OmegaConf.create({"seed": 0, "data": {"lookback_days": 30, "max_len": 50, "val_fraction": 0.1,
                                                "test_fraction": 0.2, "split": "customer",
                                                "test_touchpoints": "later.csv"}})
    _, j, splits = make_journeys(cfg, train_tp, None, later)
    train = j.subset(np.r_[splits["train"], splits["val"]])
    window = calendar_window(train)
    assert run_window(cfg, j, splits) == list(window)
    np.testing.assert_array_equal(train.calendar, journey_calendar(train))
    test = j.subset(splits["test"])
    np.testing.assert_array_equal(test.calendar, journey_calendar(test, window))  # its own end for to_end
    assert test.calendar[:, WINDOW_POSITION].max() == 1.0 and test.calendar[:, WINDOW_POSITION].min() > 0.5


def test_predict_places_a_later_file_against_the_training_window(tmp_path: Path) -> None:
    from conftest import TINY, run_cli
    from journeynet.data.inputs import load_touchpoints
    from journeynet.model.module import JourneyModule
    from journeynet.model.predict import predict_proba

    run = tmp_path / "run"
    proc = run_cli("train.py", *TINY, "attribution.engine=none", "model.calendar=true", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    module = JourneyModule.load(run / "model.ckpt")
    tp = load_touchpoints(run / "touchpoints.csv")
    trained = build_journeys(tp, Vocab.load(run / "vocab.json"))
    assert module.net.config["calendar"] and module.net.config["window"] == list(calendar_window(trained))
    shifted = pd.read_csv(run / "touchpoints.csv", keep_default_na=False)
    shifted["timestamp"] = (pd.to_datetime(shifted["timestamp"]) + pd.Timedelta(days=40)).astype(str)
    new = tmp_path / "later.csv"
    shifted.to_csv(new, index=False)
    proc = run_cli("predict.py", f"run_dir={run}", f"data.touchpoints={new}", f"hydra.run.dir={tmp_path / 'p'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv")
    later = build_journeys(load_touchpoints(new), Vocab.load(run / "vocab.json"))
    placed = with_calendar(later, window=module.net.config["window"])
    assert (placed.calendar[:, WINDOW_POSITION] == 1.0).mean() > 0.2  # past the window: clamped to its end
    np.testing.assert_array_equal(placed.calendar[:, TO_END], journey_calendar(trained)[:, TO_END])  # own end
    np.testing.assert_allclose(pred["p"], predict_proba(module.net, placed)[0], rtol=1e-5)
    # unattached, predict_proba places them the same way (against the net's window)
    np.testing.assert_allclose(pred["p"], predict_proba(module.net, later)[0], rtol=1e-5)
