"""AttentionLSTM: shapes, attention mask, padding invariance, overfitting, model config.

``make_journeys`` is shared with test_module.py and test_baselines.py (pytest puts
tests/ on sys.path); it belongs in a conftest fixture once the lead adds one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from journeynet.data.journeys import Journeys
from journeynet.model.net import AttentionLSTM, collate_journeys, touch_features
from journeynet.model.predict import attention_by_position, predict_proba

CONF = Path(__file__).resolve().parents[1] / "conf"
N_CHANNELS, N_CAMPAIGNS = 8, 5  # ids 0 and 1 are <pad>, <unk>


def make_journeys(n: int = 400, max_len: int = 8, seed: int = 0) -> Journeys:
    """Random journeys; a journey converts iff channel 3 appears before a later channel 5."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=n)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    n_touch = int(offsets[-1])
    jid = np.repeat(np.arange(n), lengths)
    pos = np.arange(n_touch) - offsets[jid]
    channel = rng.integers(2, N_CHANNELS, size=n_touch)
    gap_h = rng.exponential(24.0, size=n_touch)
    gap_h[offsets[:-1]] = 0.0
    hours = np.cumsum(gap_h)
    end_h = hours[offsets[1:] - 1][jid]
    first3 = np.minimum.reduceat(np.where(channel == 3, pos, 10**6), offsets[:-1])
    last5 = np.maximum.reduceat(np.where(channel == 5, pos, -1), offsets[:-1])
    time = (hours * 3.6e12).astype(np.int64) + 1_700_000_000 * 10**9
    return Journeys(
        channel=channel.astype(np.int64),
        campaign=rng.integers(2, N_CAMPAIGNS, size=n_touch).astype(np.int64),
        unit=channel.astype(np.int64),
        log_dt_prev=np.log1p(gap_h).astype(np.float32),
        log_dt_end=np.log1p(end_h - hours).astype(np.float32),
        position=pos.astype(np.int64),
        time=time,
        offsets=offsets,
        label=(first3 < last5).astype(np.int8),
        customer_id=np.array([f"c{i}" for i in range(n)], dtype=object),
        journey=np.zeros(n, dtype=np.int64),
        revenue=np.zeros(n),
        end_time=time[offsets[1:] - 1],
    )


def small_net(**kw: object) -> AttentionLSTM:
    torch.manual_seed(0)
    return AttentionLSTM(N_CHANNELS, N_CAMPAIGNS, hidden_size=16, attention_dim=8, **kw)


@pytest.fixture(scope="module")
def journeys() -> Journeys:
    return make_journeys()


def test_generator_plants_a_learnable_rule(journeys: Journeys) -> None:
    assert 0.1 < journeys.label.mean() < 0.6


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_attention_sums_to_one_on_real_touches(journeys: Journeys, bidirectional: bool) -> None:
    net = small_net(bidirectional=bidirectional).eval()
    b = collate_journeys(journeys, touch_features(journeys), np.arange(64))
    out = net(b["channel"], b["campaign"], b["feats"], b["lengths"])
    att, lengths = out["attention"], b["lengths"]
    assert out["logits"].shape == (64,) and att.shape == b["channel"].shape
    mask = torch.arange(att.shape[1])[None, :] < lengths[:, None]
    torch.testing.assert_close(att.sum(1), torch.ones(64))
    assert torch.all(att[~mask] == 0) and torch.all(att[mask] >= 0)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_padding_does_not_change_output(journeys: Journeys, bidirectional: bool) -> None:
    net = small_net(bidirectional=bidirectional, num_layers=2).eval()
    feats = touch_features(journeys)
    idx = np.flatnonzero(journeys.lengths == 2)[:4]
    alone = collate_journeys(journeys, feats, idx)  # T = 2, no padding
    mixed = collate_journeys(journeys, feats, np.r_[idx, np.argmax(journeys.lengths)])
    assert mixed["channel"].shape[1] > 2
    # Garbage in padded slots must be ignored too, not only zeros.
    pad = torch.arange(mixed["channel"].shape[1])[None, :] >= mixed["lengths"][:, None]
    mixed["channel"][pad] = 6
    mixed["feats"][pad] = 9.0
    a = net(alone["channel"], alone["campaign"], alone["feats"], alone["lengths"])
    m = net(mixed["channel"], mixed["campaign"], mixed["feats"], mixed["lengths"])
    torch.testing.assert_close(m["logits"][:4], a["logits"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m["attention"][:4, :2], a["attention"], atol=1e-6, rtol=1e-5)


def test_overfits_one_small_batch(journeys: Journeys) -> None:
    net = small_net(dropout=0.0)
    b = collate_journeys(journeys, touch_features(journeys), np.arange(16))
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    for _ in range(200):  # usually converges in a few dozen steps; stop early to stay fast
        opt.zero_grad()
        logits = net(b["channel"], b["campaign"], b["feats"], b["lengths"])["logits"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, b["label"])
        if loss.item() < 0.02:
            break
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def test_predict_proba_aligns_attention_with_touches(journeys: Journeys) -> None:
    net = small_net()
    p, att = predict_proba(net, journeys, batch_size=50)
    assert p.shape == (len(journeys),) and att.shape == (journeys.n_touches,)
    assert net.training, "predict_proba must restore the net's mode"
    sums = np.add.reduceat(att, journeys.offsets[:-1])
    np.testing.assert_allclose(sums, 1.0, atol=1e-5)
    # Same journey scored alone gives the same probability and attention.
    i = int(np.argmax(journeys.lengths))
    p1, att1 = predict_proba(net, journeys.subset([i]))
    np.testing.assert_allclose(p1, p[[i]], atol=1e-6)
    np.testing.assert_allclose(att1, att[journeys.offsets[i]:journeys.offsets[i + 1]], atol=1e-6)


def test_attention_by_position_is_tidy(journeys: Journeys) -> None:
    _, att = predict_proba(small_net(), journeys)
    df = attention_by_position(journeys, att, max_pos=5)
    assert list(df.columns) == ["pos_from_end", "label", "attention", "n"]
    assert set(df["label"]) == {0, 1} and df["pos_from_end"].max() == 4
    # Last touch: every journey contributes one.
    assert df.loc[df.pos_from_end == 0, "n"].sum() == len(journeys)
    with pytest.raises(ValueError, match="attention must have shape"):
        attention_by_position(journeys, att[:-1])


def test_bad_vocab_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="n_channels must be >= 2"):
        AttentionLSTM(1, 4)


def test_model_config_instantiates() -> None:
    cfg = OmegaConf.load(CONF / "model" / "attention_lstm.yaml")
    net = instantiate(cfg, n_channels=N_CHANNELS, n_campaigns=N_CAMPAIGNS)
    assert isinstance(net, AttentionLSTM)
    assert set(cfg) - {"_target_"} <= set(net.config)


# --- the two paths, calibration, determinism --------------------------------------------------

def planted(n: int, kind: str, seed: int = 0) -> Journeys:
    """Four kept touches per journey, with a signal only one of the two paths can see.

    ``order``: touches ``2, a, b, 2`` at one instant, ``(a, b)`` is ``(3, 4)`` or ``(4, 3)``;
    converts iff 3 comes first. Counts, first and last channel, gaps and recency are the
    same either way, so no journey summary separates them; the recurrent path reads order.
    ``count``: random kept touches; converts iff the journey had 30 touches before
    truncation to its last 4 (else 5). Only the summary path sees the length before truncation.
    """
    rng = np.random.default_rng(seed)
    label = rng.random(n) < 0.4
    offsets = np.arange(n + 1, dtype=np.int64) * 4
    jid = np.repeat(np.arange(n), 4)
    pos = np.tile(np.arange(4), n)
    if kind == "order":
        channel = np.tile([2, 3, 4, 2], n)
        swap = np.repeat(~label, 4) & (pos > 0) & (pos < 3)
        channel = np.where(swap, 7 - channel, channel)
        hours = np.zeros(4 * n)
        full = None
    else:
        channel = rng.integers(2, N_CHANNELS, size=4 * n)
        hours = np.cumsum(rng.exponential(5.0, size=4 * n))
        full = np.where(label, 30, 5).astype(np.int64)
    end_h = hours[offsets[1:] - 1][jid]
    gap = np.diff(hours, prepend=hours[0])
    time = (hours * 3.6e12).astype(np.int64) + 1_700_000_000 * 10**9
    return Journeys(
        channel=channel.astype(np.int64), campaign=np.full(4 * n, 2, dtype=np.int64),
        unit=channel.astype(np.int64), log_dt_prev=np.log1p(gap).astype(np.float32),
        log_dt_end=np.log1p(end_h - hours).astype(np.float32), position=pos.astype(np.int64),
        time=time, offsets=offsets, label=label.astype(np.int8),
        customer_id=np.array([f"c{i}" for i in range(n)], dtype=object),
        journey=np.zeros(n, dtype=np.int64), revenue=np.zeros(n), end_time=time[offsets[1:] - 1],
        full_length=full,
    )


def fit_full_batch(net: AttentionLSTM, j: Journeys, steps: int = 150, lr: float = 1e-2) -> AttentionLSTM:
    """A few full-batch Adam steps: enough for a planted rule on a few hundred journeys."""
    b = collate_journeys(j, touch_features(j), np.arange(len(j)))
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        out = net(b["channel"], b["campaign"], b["feats"], b["lengths"], b["full_length"], b.get("history"),
                  b.get("calendar"))
        torch.nn.functional.binary_cross_entropy_with_logits(out["logits"], b["label"]).backward()
        opt.step()
    return net.eval()


def held_out_auc(net: AttentionLSTM, j: Journeys) -> float:
    from sklearn.metrics import roc_auc_score

    p, att = predict_proba(net, j)
    np.testing.assert_allclose(np.add.reduceat(att, j.offsets[:-1]), 1.0, atol=1e-5)
    return float(roc_auc_score(j.label, p))


@pytest.mark.parametrize(("kind", "sees", "blind"), [
    ("order", dict(summary_dim=0), dict(recurrent=False)),
    ("count", dict(recurrent=False), dict(summary_dim=0)),
], ids=["order-recurrent-only", "count-summary-only"])
def test_each_path_learns_the_signal_the_other_cannot_see(kind: str, sees: dict, blind: dict) -> None:
    train, test = planted(300, kind, seed=1), planted(300, kind, seed=2)
    for kw, lo, hi in ((sees, 0.95, 1.0), (blind, 0.0, 0.65), ({}, 0.95, 1.0)):
        auc = held_out_auc(fit_full_batch(small_net(dropout=0.0, **kw), train, steps=100), test)
        assert lo <= auc <= hi, (kind, kw, auc)


def repeat_customers(n_customers: int, seed: int) -> Journeys:
    """Customers with 1-4 journeys of random touches; a later journey converts iff an earlier one did.

    A customer's first journey converts at random (30%). The touches say nothing about the
    label: only the customer history (``model.history``) can tell the later journeys apart.
    """
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 5, size=n_customers)
    n = int(per.sum())
    customer = np.repeat(np.arange(n_customers), per)
    journey = np.arange(n) - np.repeat(np.cumsum(per) - per, per)
    label = np.zeros(n, dtype=np.int8)
    converted_before = np.zeros(n_customers, dtype=bool)
    for k in range(4):  # journey k of every customer, in order
        at = journey == k
        label[at] = converted_before[customer[at]] if k else rng.random(at.sum()) < 0.3
        converted_before[customer[at]] |= label[at].astype(bool)
    j = make_journeys(n=n, seed=seed)
    j.label, j.journey = label, journey.astype(np.int64)
    j.customer_id = np.array([f"c{c}" for c in customer], dtype=object)
    j.end_time = (journey * 500 + rng.integers(0, 400, size=n)).astype(np.int64) * 3_600_000_000_000
    return j


@pytest.mark.parametrize("history", [True, False], ids=["history", "blind"])
def test_history_path_learns_what_only_the_customer_history_shows(history: bool) -> None:
    from journeynet.data.history import with_history

    train, test = (with_history(repeat_customers(150, seed)) for seed in (1, 2))
    net = fit_full_batch(small_net(dropout=0.0, history=history), train, steps=60)
    auc = held_out_auc(net, test)
    # first journeys are a coin flip for every net; the later ones are exact with the history
    assert (auc > 0.85) if history else (auc < 0.65), auc


def test_history_net_refuses_a_batch_without_history(journeys: Journeys) -> None:
    b = collate_journeys(journeys, touch_features(journeys), np.arange(4), history=None)
    b.pop("history", None)
    with pytest.raises(ValueError, match="model.history=true"):
        small_net(history=True)(b["channel"], b["campaign"], b["feats"], b["lengths"])
    with pytest.raises(ValueError, match="model.history=true needs the summary path"):
        AttentionLSTM(4, 4, summary_dim=0, history=True)


def seasonal_journeys(n: int, seed: int) -> Journeys:
    """``make_journeys`` moved to random days of a 100-day window; converts iff it ends in days 60-85.

    Each journey keeps its own touches and gaps (shifted as a whole), so everything but
    where it lies in the window is independent of the label: only ``model.calendar`` sees it.
    """
    day = 86_400_000_000_000
    j = make_journeys(n=n, seed=seed)
    rng = np.random.default_rng(seed + 50)
    end_day = rng.uniform(0, 100, size=n)
    end_day[:2] = (0, 100)  # the window is the same 100 days in every set
    jid = np.repeat(np.arange(n), j.lengths)
    new_end = 1_700_000_000 * 10**9 + (end_day * day).astype(np.int64)
    j.time = j.time - j.end_time[jid] + new_end[jid]
    j.end_time = new_end
    j.label = ((end_day >= 60) & (end_day < 85)).astype(np.int8)
    return j


@pytest.mark.parametrize("calendar", [True, False], ids=["calendar", "blind"])
def test_calendar_path_learns_what_only_the_window_position_shows(calendar: bool) -> None:
    from journeynet.data.calendar import calendar_window, with_calendar

    train = seasonal_journeys(400, seed=1)
    window = calendar_window(train)
    test = with_calendar(seasonal_journeys(400, seed=2), window)  # placed against the training window
    net = fit_full_batch(small_net(dropout=0.0, calendar=calendar, window=window), with_calendar(train), steps=80)
    auc = held_out_auc(net, test)
    assert (auc > 0.9) if calendar else (auc < 0.65), auc
    if calendar:  # predict_proba places journeys without an attached calendar against the net's window
        test.calendar = None
        assert held_out_auc(net, test) == auc


def test_calendar_net_refuses_a_batch_without_it(journeys: Journeys) -> None:
    b = collate_journeys(journeys, touch_features(journeys), np.arange(4))
    with pytest.raises(ValueError, match="model.calendar=true"):
        small_net(calendar=True)(b["channel"], b["campaign"], b["feats"], b["lengths"])
    with pytest.raises(ValueError, match="model.calendar=true needs the summary path"):
        AttentionLSTM(4, 4, summary_dim=0, calendar=True)


def noisy_journeys(n: int, seed: int) -> Journeys:
    """``make_journeys`` with label noise: P(convert) is 0.75 under the rule, else 0.15."""
    j = make_journeys(n=n, seed=seed)
    u = np.random.default_rng(seed + 100).random(n)
    j.label = np.where(j.label == 1, u < 0.75, u < 0.15).astype(np.int8)
    return j


def decile_errors(net: AttentionLSTM, j: Journeys) -> np.ndarray:
    """|mean predicted - observed conversion rate| per decile of the prediction."""
    from journeynet.model.calibration import reliability

    p, _ = predict_proba(net, j)
    table = reliability(j.label, p)
    return (table["predicted"] - table["observed"]).abs().to_numpy()


def test_calibration_on_validation_matches_observed_rates_per_decile() -> None:
    from journeynet.model.calibration import calibrate

    train, val, test = (noisy_journeys(n, s) for n, s in ((1500, 3), (1500, 4), (3000, 5)))
    net = fit_full_batch(small_net(dropout=0.0), train, steps=80)
    with torch.no_grad():
        net.logit_scale.fill_(4.0)  # an over-confident net, as one trained too long is
    before = decile_errors(net, test)
    fitted = calibrate(net, val)
    after = decile_errors(net, test)
    assert before.mean() > 0.15, before  # the check can fail: the over-confident net misses it
    # 300 journeys per decile: sampling error of an observed rate is about 0.025; the tiny
    # net's logit is not exactly affine in the true one, so Platt leaves a little on top
    assert after.mean() < 0.06 and after.max() < 0.15, (after, fitted)
    assert fitted["val_logloss_after"] < fitted["val_logloss_before"]
    assert held_out_auc(net, test) > 0.65


@pytest.mark.parametrize("kw", [{}, dict(history=True), dict(calendar=True)], ids=["default", "history", "calendar"])
def test_same_seed_same_predictions(kw: dict) -> None:
    from journeynet.data.calendar import with_calendar
    from journeynet.data.history import with_history

    j = with_calendar(with_history(make_journeys(n=200, seed=4)))  # collation takes the attached arrays
    runs = [predict_proba(fit_full_batch(small_net(**kw), j, steps=20), j) for _ in range(2)]
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("kw", [dict(cell="gru"), dict(recurrent=False), dict(summary_dim=0), dict(history=True),
                                dict(calendar=True)],
                         ids=["gru", "summary-only", "recurrent-only", "history", "calendar"])
def test_every_variant_keeps_attention_readable(journeys: Journeys, kw: dict) -> None:
    p, att = predict_proba(small_net(**kw), journeys)
    assert p.shape == (len(journeys),) and np.all((p > 0) & (p < 1))
    np.testing.assert_allclose(np.add.reduceat(att, journeys.offsets[:-1]), 1.0, atol=1e-5)


def test_bad_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="model.cell must be one of"):
        AttentionLSTM(4, 4, cell="rnn")
    with pytest.raises(ValueError, match="model.summary_dim must be >= 0 and > 0"):
        AttentionLSTM(4, 4, summary_dim=0, recurrent=False)
