"""Attribution tables: deletion helpers, attention roles, funnel scores, assembly and the truth report.

The last tests use a generated world to show why journeynet answers with interventions:
measures that read recorded journeys (last touch, Markov removal, i.e. deleting a
unit's touches) credit the brand-search unit far above its true interventional share,
while the intervention in the true funnel reproduces the truth exactly.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from journeynet.attribution.classic import MODELS, classic_credit
from journeynet.attribution.evaluation import truth_report
from journeynet.attribution.tables import (
    UNPAID_NOTE,
    assemble,
    attention_roles,
    delete_unit,
    funnel_table,
    shares,
    total_variation,
)
from journeynet.causal.funnel import FunnelParams, expected_conversions
from journeynet.causal.interventions import removal_effects
from journeynet.causal.sample import SimConfig, simulate
from journeynet.data.journeys import Vocab, build_journeys

torch.set_num_threads(1)
T0 = pd.Timestamp("2024-02-01")


def touch_frame() -> pd.DataFrame:
    """a: email, search, direct (buys); b: search only (buys); c: search, email, search (no sale)."""
    rows = [("a", 0, "email", ""), ("a", 10, "google_ads", "search"), ("a", 30, "direct", ""),
            ("b", 2, "google_ads", "search"),
            ("c", 0, "google_ads", "search"), ("c", 5, "email", ""), ("c", 8, "google_ads", "search")]
    tp = pd.DataFrame(rows, columns=["customer_id", "hours", "channel", "campaign_type"])
    tp["timestamp"] = T0 + pd.to_timedelta(tp.pop("hours"), unit="h")
    tp["converted"] = [0, 0, 1, 1, 0, 0, 0]
    tp["revenue"] = [0, 0, 80.0, 20.0, 0, 0, 0]
    return tp[["customer_id", "timestamp", "channel", "campaign_type", "converted", "revenue"]]


@pytest.fixture
def journeys():
    tp = touch_frame()
    vocab = Vocab.fit(tp)
    assert vocab.units[2:] == [("direct", ""), ("email", ""), ("google_ads", "search")]
    return build_journeys(tp, vocab), vocab, tp


def test_delete_unit_drops_touches_and_rebuilds_features(journeys):
    j, _, _ = journeys
    search = 4
    out, kept = delete_unit(j, search)
    assert kept.tolist() == [0, 2]  # b had only the search touch: its journey is gone
    assert out.offsets.tolist() == [0, 2, 3]
    assert out.unit.tolist() == [3, 2, 3]
    assert out.position.tolist() == [0, 1, 0]
    np.testing.assert_allclose(out.log_dt_prev, np.log1p([0.0, 30.0, 0.0]), rtol=1e-6)
    # time to the end is measured to the new last touch (c's last touch was deleted)
    np.testing.assert_allclose(out.log_dt_end, np.log1p([30.0, 0.0, 0.0]), rtol=1e-6)
    assert out.label.tolist() == [1, 0]
    assert out.customer_id.tolist() == ["a", "c"]
    assert out.revenue.tolist() == [80.0, 0.0]
    assert np.all(out.channel == np.array([j.channel[0], j.channel[2], j.channel[5]]))
    assert out.time.tolist() == [j.time[0], j.time[2], j.time[5]]
    # deleting a unit nobody touched changes nothing
    same, kept_all = delete_unit(j, 1)
    assert kept_all.tolist() == [0, 1, 2]
    for name in ("unit", "log_dt_prev", "log_dt_end", "position", "offsets", "label"):
        np.testing.assert_array_equal(getattr(same, name), getattr(j, name), err_msg=name)


def test_delete_unit_matches_rebuilding_from_the_reduced_frame(journeys):
    """Where deletion does not change how journeys are cut, it equals building journeys without the touches."""
    j, vocab, tp = journeys
    out, kept = delete_unit(j, 3)  # email: never the converting touch here
    rebuilt = build_journeys(tp[tp["channel"] != "email"], vocab)
    assert kept.tolist() == [0, 1, 2]
    for name in ("unit", "channel", "campaign", "position", "time", "offsets", "label", "revenue"):
        np.testing.assert_array_equal(getattr(out, name), getattr(rebuilt, name), err_msg=name)
    np.testing.assert_allclose(out.log_dt_prev, rebuilt.log_dt_prev, rtol=1e-6)
    np.testing.assert_allclose(out.log_dt_end, rebuilt.log_dt_end, rtol=1e-6)


def test_attention_roles_split_credit_by_position():
    j = SimpleNamespace(unit=np.array([2, 3, 4, 4, 2, 3]), offsets=np.array([0, 3, 4, 6]),
                        label=np.array([1, 1, 0], dtype=np.int8))
    attention = np.array([0.2, 0.3, 0.5, 1.0, 0.9, 0.1])  # the third journey does not convert: ignored
    roles = attention_roles(j, attention, n_units=5)
    # relative positions 0, 0.5, 1 in journey 0; a one-touch journey splits evenly
    np.testing.assert_allclose(roles["attention_start"], [0, 0, 0.2, 0.15, 0.5])
    np.testing.assert_allclose(roles["attention_end"], [0, 0, 0.0, 0.15, 1.0])
    np.testing.assert_allclose(roles["attention_opener"].iloc[2:], [1.0, 0.5, 1 / 3])
    assert roles["attention_opener"].iloc[:2].isna().all()
    assert roles.index.name == "unit"


def test_shares_and_total_variation():
    np.testing.assert_allclose(shares(pd.Series([2.0, -1.0, 2.0, np.nan])), [0.5, 0.0, 0.5, 0.0])
    np.testing.assert_array_equal(shares(np.zeros(3)), np.zeros(3))
    assert total_variation([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1)
    assert total_variation([1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(1.0)
    p, q = shares([3, 1, 0, 4]), shares([1, 1, 1, 1])
    assert total_variation(p, q) == pytest.approx(total_variation(q, p))
    assert total_variation(p, p) == 0.0


def test_funnel_table_scores_and_scaling():
    params = FunnelParams.example(n_units=3, n_unpaid=1)
    spend = np.tile([[150.0, 80.0, 0.0]], (40, 1))
    spend[::3, 2] = 200.0
    observed = 123.0
    table = funnel_table(params, spend, observed)
    effects = removal_effects(params, spend)
    np.testing.assert_allclose(table["removal_effect"], effects["effect"])
    assert (table["removal_effect"] > 0).all()
    np.testing.assert_allclose(table["opener_score"] + table["closer_score"], 1.0)
    np.testing.assert_allclose(table["opener_score"], effects["opener_effect"] / effects["effect"])
    expected = expected_conversions(params, spend).sum()
    np.testing.assert_allclose(table["attributed_conversions"], table["removal_effect"] * observed / expected)
    # unit 0 only opens in FunnelParams.example; the others convert on their touches
    assert table["opener_score"].iloc[0] > 0.99 and table["closer_score"].iloc[1:].min() > 0.2
    # a unit with no spend has no effect and no role
    dark = funnel_table(params, spend * [1.0, 1.0, 0.0], observed)
    assert dark["removal_effect"].iloc[2] == 0.0 and np.isnan(dark["opener_score"].iloc[2])


def small_tables(vocab: Vocab, journeys, funnel: pd.DataFrame | None) -> pd.DataFrame:
    classic = classic_credit(journeys, vocab.n_units)
    uniform = np.ones(journeys.n_touches) / np.repeat(journeys.lengths, journeys.lengths)
    attention = attention_roles(journeys, uniform, vocab.n_units)
    naive = {i: float(i) for i in range(2, vocab.n_units)}
    return assemble(vocab, classic, attention, naive, funnel)


def test_assemble_marks_unpaid_rows_and_keeps_every_view(journeys):
    j, _, tp = journeys
    spend = pd.DataFrame({"date": [T0], "channel": ["google_ads"], "campaign_type": ["search"], "spend": [10.0]})
    vocab = Vocab.fit(tp, spend)
    funnel = pd.DataFrame({"channel": ["google_ads"], "campaign_type": ["search"], "attributed_conversions": [1.5],
                           "removal_effect": [3.0], "opener_score": [0.25], "closer_score": [0.75]})
    table = assemble(vocab, classic_credit(j, vocab.n_units), attention_roles(j, np.full(j.n_touches, 0.5),
                                                                               vocab.n_units),
                     {4: 0.7}, funnel)
    assert list(table.columns[:8]) == ["channel", "campaign_type", "paid", "attributed_conversions",
                                       "removal_effect", "removal_effect_naive", "opener_score", "closer_score"]
    assert set(MODELS) <= set(table.columns) and "note" in table
    table = table.set_index("channel")
    for unpaid in ("direct", "email"):
        row = table.loc[unpaid]
        assert not row["paid"] and row["note"] == UNPAID_NOTE
        assert row["removal_effect"] == 0.0 and row["attributed_conversions"] == 0.0
    paid = table.loc["google_ads"]
    assert paid["paid"] and paid["note"] == ""
    assert (paid["removal_effect"], paid["attributed_conversions"], paid["opener_score"]) == (3.0, 1.5, 0.25)
    assert paid["removal_effect_naive"] == 0.7
    assert paid["last_touch"] == 1.0  # b's purchase; a's went to direct
    assert table.loc["direct", "last_touch"] == 1.0
    # without spend, paid units say why they have no interventional effect
    no_funnel = assemble(vocab, classic_credit(j, vocab.n_units),
                         attention_roles(j, np.full(j.n_touches, 0.5), vocab.n_units), {}, None)
    paid = no_funnel[no_funnel["paid"]].iloc[0]
    assert paid["note"].startswith("no spend data") and np.isnan(paid["removal_effect"])


# ----- on a generated world: the truth report, and deletion versus intervention ------------------------------------


@pytest.fixture(scope="module")
def sim():
    return simulate(SimConfig(pool=4000, days=70, seed=2))


@pytest.fixture(scope="module")
def true_table(sim):
    """The attribution table journeynet would write if the funnel fit were perfect (the true params)."""
    vocab = Vocab.fit(sim.touchpoints, sim.spend)
    j = build_journeys(sim.touchpoints, vocab)
    funnel = funnel_table(sim.params, sim.spend_matrix, float(sim.touchpoints["converted"].sum()))
    return small_tables(vocab, j, funnel)


def test_truth_report_on_the_true_params_is_exact(sim, true_table):
    report = truth_report(sim.truth, true_table, sim.touchpoints)
    tv = report["tv_distance"]
    assert tv["removal_effect"] == pytest.approx(0.0, abs=1e-12)
    assert tv["last_touch"] > 0.15, tv
    assert min(tv[m] for m in MODELS) > 0.05, tv  # every classic model is clearly off
    assert report["roles"]["checked"] and report["roles"]["openers_above_closers"]
    assert report["last_touch_unpaid_conversions"] == float(
        sim.touchpoints.loc[sim.touchpoints["converted"] == 1, "campaign_type"].eq("").sum())
    units = pd.DataFrame(report["units"])
    np.testing.assert_allclose(units["removal_effect_share"], units["true_share"], atol=1e-5)


def test_deletion_over_credits_brand_while_the_intervention_is_exact(sim, true_table):
    """Brand search, as measured by reading the journeys versus by switching it off.

    * true share: the generator's interventional share of paid incremental conversions
      (conversions lost when brand spend is switched off and the world re-propagated);
    * deletion measures, computed with full knowledge of every recorded journey: last
      touch and first-order Markov removal (delete the unit's state from the journey
      chain and measure the drop in conversion). Both read evidence of intent: brand
      search touches people who are about to buy anyway;
    * intervention: the removal effect in the funnel with the true parameters.
    """
    truth = pd.DataFrame(sim.truth["units"]).set_index(["channel", "campaign_type"])
    paid = true_table[true_table["paid"]].set_index(["channel", "campaign_type"]).loc[truth.index]
    brand = truth.index.get_loc(("google_ads", "brand_search"))
    true_share = shares(truth["effect"])[brand]
    assert truth["role"].iloc[brand] == "brand" and true_share < 0.1
    for deletion, factor in (("last_touch", 3.0), ("markov", 1.5)):
        measured = shares(paid[deletion])[brand]
        assert measured > factor * true_share, (deletion, measured, true_share)
    assert shares(paid["removal_effect"])[brand] == pytest.approx(true_share, abs=1e-12)
