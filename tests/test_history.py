"""The customer history: exact values on hand-made journeys, causality, and every path carrying it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeynet.data.history import (
    EARLIER,
    EARLIER_CONVERTED,
    HOUR_SCALE,
    N_HISTORY,
    NO_PREVIOUS,
    SINCE_PREVIOUS,
    customer_history,
    journey_history,
    with_history,
)
from journeynet.data.journeys import Journeys, Vocab, build_journeys

H = 3_600_000_000_000  # one hour in ns


def hand_journeys() -> Journeys:
    """Customers a (3 journeys), b (1), c (2, ending at the same instant); one touch each, out of order."""
    customer = np.array(["a", "b", "a", "c", "a", "c"], dtype=object)
    journey = np.array([2, 0, 0, 0, 1, 1])
    label = np.array([0, 1, 1, 1, 0, 0], np.int8)
    end = np.array([300, 7, 100, 50, 110, 50]) * H
    n = len(customer)
    return Journeys(
        channel=np.full(n, 2), campaign=np.full(n, 2), unit=np.full(n, 2),
        log_dt_prev=np.zeros(n, np.float32), log_dt_end=np.zeros(n, np.float32), position=np.zeros(n, np.int64),
        time=end, offsets=np.arange(n + 1, dtype=np.int64), label=label, customer_id=customer,
        journey=journey, revenue=np.zeros(n), end_time=end,
    )


def decoded(x: np.ndarray) -> np.ndarray:
    """Counts and hours back from the stored log1p values (hours NaN where there is no previous journey)."""
    hours = np.where(x[:, SINCE_PREVIOUS] == NO_PREVIOUS, np.nan, np.expm1(x[:, SINCE_PREVIOUS] * HOUR_SCALE))
    return np.stack([np.expm1(x[:, EARLIER]), np.expm1(x[:, EARLIER_CONVERTED]), hours], axis=1)


def test_history_counts_only_earlier_journeys_exactly() -> None:
    x = customer_history(hand_journeys())
    assert x.shape == (6, N_HISTORY) and x.dtype == np.float32
    expected = np.array([
        [2, 1, 190.0],  # a's third: a's first (converted, ended at 100) and second (110), not itself
        [0, 0, np.nan],  # b's only journey: the sentinel
        [0, 0, np.nan],  # a's first
        [0, 0, np.nan],  # c's journeys end at the same instant: neither is earlier than the other
        [1, 1, 10.0],  # a's second: a's first converted 10 hours before it ended
        [0, 0, np.nan],
    ])
    np.testing.assert_allclose(decoded(x), expected, rtol=1e-5)
    assert np.all(x[[1, 2, 3, 5], SINCE_PREVIOUS] == NO_PREVIOUS)


def test_a_journeys_own_and_later_outcomes_do_not_change_its_history() -> None:
    j = hand_journeys()
    before = customer_history(j)
    j.label = np.array([1, 0, 1, 0, 0, 1], np.int8)  # a's last, b's, c's: their own or later outcomes
    np.testing.assert_array_equal(customer_history(j), before)
    j.label[2] = 0  # a's first: both of a's later journeys lose a converted predecessor
    after = customer_history(j)
    assert after[0, EARLIER_CONVERTED] == after[4, EARLIER_CONVERTED] == 0.0


def test_history_is_keyed_on_the_split_group() -> None:
    j = hand_journeys()
    j.customer_id = np.array(["u1_j2", "u2_j0", "u1_j0", "u3_j0", "u1_j1", "u3_j1"], dtype=object)
    np.testing.assert_array_equal(customer_history(j)[:, EARLIER], 0.0)  # one id per journey: no history
    np.testing.assert_array_equal(customer_history(j, "^u[0-9]+"), customer_history(hand_journeys()))


def test_subsets_and_deletions_keep_the_history_of_the_whole_set() -> None:
    from journeynet.attribution.tables import delete_unit

    j = with_history(hand_journeys())
    sub = j.subset([0, 4])  # a's later journeys without the first: still know it
    np.testing.assert_array_equal(sub.history, j.history[[0, 4]])
    np.testing.assert_array_equal(journey_history(sub), j.history[[0, 4]])
    reduced, kept = delete_unit(j.subset(np.arange(6)), 99)
    np.testing.assert_array_equal(reduced.history, j.history[kept])


def test_collate_carries_the_history() -> None:
    from journeynet.model.features import collate_journeys, touch_features

    j = with_history(hand_journeys())
    b = collate_journeys(j, touch_features(j), np.array([4, 1]))
    np.testing.assert_array_equal(b["history"].numpy(), j.history[[4, 1]])
    j.history = None  # computed from the journeys' own arrays when not attached
    np.testing.assert_array_equal(journey_history(j), customer_history(j))


def random_touchpoints(n_customers: int = 300, seed: int = 0) -> pd.DataFrame:
    """Touches over 200 days, 5% converting: customers come back after conversions and long silences."""
    rng = np.random.default_rng(seed)
    n = 12 * n_customers
    return pd.DataFrame({
        "customer_id": rng.integers(0, n_customers, n).astype(str),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.uniform(0, 200 * 24, n), unit="h"),
        "channel": rng.choice(["email", "search", "social"], n), "campaign_type": "",
        "converted": (rng.random(n) < 0.05).astype(np.int8), "revenue": 0.0,
    })


def test_store_path_gives_the_history_of_the_in_memory_path(tmp_path: object) -> None:
    from journeynet.data.engines import build_store_from_frame
    from journeynet.data.partition import sort_by_customer
    from journeynet.model.shards import ShardedJourneyDataModule

    tp = random_touchpoints()
    vocab = Vocab.fit(tp)
    memory = with_history(build_journeys(tp, vocab))
    assert (memory.history[:, EARLIER] > 0).mean() > 0.1  # the world has repeat customers
    build_store_from_frame(tp, tmp_path, None, 30, 50, 3)
    dm = ShardedJourneyDataModule(tmp_path, rank=0, world_size=1)
    dm.setup()
    stored = sort_by_customer(dm.journeys)
    np.testing.assert_array_equal(stored.customer_id, memory.customer_id)
    np.testing.assert_array_equal(stored.history, memory.history)
    batch = dm.inner.dataset[np.arange(5)]
    np.testing.assert_array_equal(batch["history"].numpy(), dm.journeys.history[:5])


@pytest.mark.parametrize("n_journeys", [0, 1], ids=["empty", "one"])
def test_tiny_sets(n_journeys: int) -> None:
    x = customer_history(hand_journeys().subset(np.arange(n_journeys)))
    assert x.shape == (n_journeys, N_HISTORY)
    assert np.all(x[:, SINCE_PREVIOUS] == NO_PREVIOUS)


def test_missing_arrays_are_named() -> None:
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="missing end_time"):
        customer_history(SimpleNamespace(customer_id=np.array(["a"]), journey=np.zeros(1), label=np.zeros(1)))
    assert journey_history(SimpleNamespace(offsets=np.array([0, 1]))) is None


def test_runs_key_the_history_on_customer_id_not_on_the_split_group() -> None:
    from omegaconf import OmegaConf

    from journeynet.model.training import make_journeys

    tp = random_touchpoints(60)
    tp["customer_id"] = "u" + tp["customer_id"] + "_j0"
    cfg = OmegaConf.create({"seed": 0, "data": {"lookback_days": 30, "max_len": 50, "val_fraction": 0.1,
                                                "test_fraction": 0.2, "split": "customer", "split_group": "^u[0-9]+"}})
    _, j, _ = make_journeys(cfg, tp, None, None)
    np.testing.assert_array_equal(j.history, customer_history(j))  # export-cut ids keep no cross-id history
    assert (j.history[:, EARLIER] > 0).any()  # the project's own cuts within an id still count
    tp["customer_id"] = tp["customer_id"].str.replace("_j0", "") + "_j" + tp["timestamp"].dt.month.astype(str)
    _, j, _ = make_journeys(cfg, tp, None, None)
    assert not np.array_equal(j.history, customer_history(j, "^u[0-9]+"))
    np.testing.assert_array_equal(j.history, customer_history(j))


def test_order_of_the_journeys_does_not_matter() -> None:
    j = build_journeys(random_touchpoints(), Vocab.fit(random_touchpoints()))  # sorted: the sort is skipped
    perm = np.random.default_rng(1).permutation(len(j))
    np.testing.assert_array_equal(customer_history(j.subset(perm)), customer_history(j)[perm])
