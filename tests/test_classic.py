"""Hand-computed checks of the classic attribution models in journeynet.attribution.classic."""

from fractions import Fraction as F
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from journeynet.attribution.classic import (
    MODELS,
    classic_credit,
    first_touch,
    last_touch,
    linear,
    markov_removal,
    markov_removal_effects,
    position_based,
    time_decay,
)

DAY = 86_400 * 10**9
T0 = 1_700_000_000 * 10**9  # realistic epoch ns, to catch float precision loss


def make_journeys(paths, labels, days=None):
    """Duck-typed Journeys: list of unit-id lists, 0/1 labels, optional day offsets."""
    lengths = [len(p) for p in paths]
    if days is None:
        days = [list(range(n)) for n in lengths]
    return SimpleNamespace(
        unit=np.array([u for p in paths for u in p], dtype=np.int64),
        time=T0 + np.array([d for ds in days for d in ds], dtype=np.int64) * DAY,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        label=np.array(labels, dtype=np.int8),
    )


def fl(*fracs):
    return np.array([float(f) for f in fracs])


# Units 2..5 (0 = pad, 1 = unknown). Three conversions and one non-converting journey.
HAND = make_journeys(
    paths=[[2, 3, 4], [5], [3, 2], [4, 5]],
    labels=[1, 1, 1, 0],
    days=[[0, 7, 14], [3], [0, 7], [0, 1]],
)
N_UNITS = 6

# Expected credit per unit id 0..5, worked by hand:
#   J0 = 2,3,4 (days 0,7,14) conv; J1 = 5 conv; J2 = 3,2 (days 0,7) conv; J3 = 4,5 null.
EXPECTED = {
    # last: J0->4, J1->5, J2->2
    "last_touch": fl(0, 0, 1, 0, 1, 1),
    # first: J0->2, J1->5, J2->3
    "first_touch": fl(0, 0, 1, 1, 0, 1),
    # J0: 1/3 each; J1: 1 to 5; J2: 1/2 each to 3 and 2
    "linear": fl(0, 0, F(1, 3) + F(1, 2), F(1, 3) + F(1, 2), F(1, 3), 1),
    # half-life 7: J0 ages 14,7,0 -> 1/4,1/2,1 (sum 7/4) -> 1/7,2/7,4/7;
    # J2 ages 7,0 -> 1/2,1 -> unit 3 gets 1/3, unit 2 gets 2/3
    "time_decay": fl(0, 0, F(1, 7) + F(2, 3), F(2, 7) + F(1, 3), F(4, 7), 1),
    # 40/20/40 on J0; J1 one touch -> all; J2 two touches -> 50/50
    "position_based": fl(0, 0, F(4, 10) + F(1, 2), F(2, 10) + F(1, 2), F(4, 10), 1),
}

RULES = {
    "last_touch": last_touch,
    "first_touch": first_touch,
    "linear": linear,
    "time_decay": time_decay,
    "position_based": position_based,
}


@pytest.mark.parametrize("name", list(RULES), ids=list(RULES))
def test_rule_based_hand_computed(name):
    got = RULES[name](HAND, N_UNITS)
    assert got.shape == (N_UNITS,) and got.dtype == np.float64
    np.testing.assert_allclose(got, EXPECTED[name], atol=1e-12)
    assert got.sum() == pytest.approx(3.0)


def test_position_based_middle_split_and_repeats():
    j = make_journeys([[2, 3, 4, 5], [2, 3, 2]], [1, 1])
    # J0: .4 / .1 / .1 / .4; J1: unit 2 first and last (.4 + .4), unit 3 middle .2
    np.testing.assert_allclose(position_based(j, 6), [0, 0, 1.2, 0.3, 0.1, 0.4])
    # Two-touch convention: middle share spread in proportion -> 0.3/(0.3+0.5)
    two = make_journeys([[2, 3]], [1])
    np.testing.assert_allclose(position_based(two, 4, first=0.3, last=0.5), [0, 0, 0.375, 0.625])


def test_time_decay_half_life_parameter():
    j = make_journeys([[2, 3]], [1], days=[[0, 14]])
    # half-life 14 days: weights 1/2, 1 -> 1/3, 2/3
    np.testing.assert_allclose(time_decay(j, 4, half_life_days=14), [0, 0, 1 / 3, 2 / 3])


# Textbook example: C1->C2->C3 conv, C1 null, C2->C3 null with C1=2, C2=3, C3=4.
# start -> C1 2/3, C2 1/3; C1 -> C2 1/2, null 1/2; C2 -> C3 1; C3 -> conv 1/2, null 1/2.
# P(conv) = 2/3 * 1/2 * 1 * 1/2 + 1/3 * 1 * 1/2 = 1/3.
# Remove C1: 1/3 * 1/2 = 1/6 -> effect 1/2; remove C2 or C3: 0 -> effect 1.
TEXTBOOK = make_journeys([[2, 3, 4], [2], [3, 4]], [1, 0, 0])


def test_markov_textbook_removal_effects():
    effects = markov_removal_effects(TEXTBOOK, 5)
    np.testing.assert_allclose(effects, fl(0, 0, F(1, 2), 1, 1), atol=1e-12)
    # Normalized to one conversion: 1/2, 1, 1 over 5/2.
    credit = markov_removal(TEXTBOOK, 5)
    np.testing.assert_allclose(credit, fl(0, 0, F(1, 5), F(2, 5), F(2, 5)), atol=1e-12)


def test_markov_order_two_sees_the_path():
    # A=2, B=3, C=4: A->B conv, C->B null.
    j = make_journeys([[2, 3], [4, 3]], [1, 0])
    # Order 1: B -> conv 1/2, P = 1/2; removing A or C halves it, removing B kills it.
    np.testing.assert_allclose(markov_removal_effects(j, 5), [0, 0, 0.5, 1, 0.5], atol=1e-12)
    np.testing.assert_allclose(markov_removal(j, 5), [0, 0, 0.25, 0.5, 0.25], atol=1e-12)
    # Order 2: (A,B) always converts, (C,B) never: C has no effect at all.
    np.testing.assert_allclose(markov_removal_effects(j, 5, order=2), [0, 0, 1, 1, 0], atol=1e-12)
    np.testing.assert_allclose(markov_removal(j, 5, order=2), [0, 0, 0.5, 0.5, 0], atol=1e-12)


def test_markov_no_conversions_gives_zeros():
    j = make_journeys([[2, 3], [3]], [0, 0])
    np.testing.assert_array_equal(markov_removal(j, 4), np.zeros(4))


def test_non_converting_journeys_get_no_credit():
    # Unit 6 only appears in non-converting journeys.
    base = make_journeys([[2, 3], [4]], [1, 1])
    more = make_journeys([[2, 3], [4], [2, 6], [6]], [1, 1, 0, 0])
    for fn in RULES.values():
        np.testing.assert_allclose(fn(more, 7), fn(base, 7))
        assert fn(more, 7)[6] == 0
    # Markov uses every journey, but 6 only ever leads to null: removing it changes nothing.
    assert markov_removal(more, 7)[6] == 0
    assert markov_removal(more, 7).sum() == pytest.approx(2.0)


def test_empty_converting_journey_is_not_counted():
    j = make_journeys([[2], [], [3]], [1, 1, 0])
    for fn in [*RULES.values(), markov_removal]:
        assert fn(j, 4).sum() == pytest.approx(1.0)


def test_classic_credit_frame():
    df = classic_credit(HAND, N_UNITS, half_life_days=7.0)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == list(MODELS)
    assert df.index.name == "unit" and list(df.index) == list(range(N_UNITS))
    np.testing.assert_allclose(df.sum().to_numpy(), 3.0)
    for name, expected in EXPECTED.items():
        np.testing.assert_allclose(df[name].to_numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "fn", "match"),
    [
        ({"half_life_days": 0}, time_decay, "half_life_days"),
        ({"first": 0.7, "last": 0.5}, position_based, "first"),
        ({"order": 0}, markov_removal_effects, "order"),
    ],
    ids=["zero_half_life", "shares_over_one", "order_zero"],
)
def test_bad_parameters_raise(kwargs, fn, match):
    with pytest.raises(ValueError, match=match):
        fn(HAND, N_UNITS, **kwargs)


@pytest.mark.parametrize(
    ("journeys", "n_units", "match"),
    [
        (make_journeys([[2, 0]], [1]), 4, "pad"),
        (make_journeys([[2, 9]], [1]), 4, r"n_units=4"),
        (
            SimpleNamespace(
                unit=np.array([2]),
                time=np.array([0]),
                offsets=np.array([0, 2]),
                label=np.array([1]),
            ),
            4,
            "offsets",
        ),
    ],
    ids=["pad_touch", "unit_out_of_range", "bad_offsets"],
)
def test_bad_journeys_raise(journeys, n_units, match):
    with pytest.raises(ValueError, match=match):
        last_touch(journeys, n_units)


# ---------------------------------------------------------------- slow reference loop


def reference_rules(j, n_units, half_life_days=7.0):
    out = {k: np.zeros(n_units) for k in RULES}
    for i in range(len(j.label)):
        u = j.unit[j.offsets[i] : j.offsets[i + 1]]
        t = j.time[j.offsets[i] : j.offsets[i + 1]]
        n = len(u)
        if not j.label[i] or n == 0:
            continue
        out["last_touch"][u[-1]] += 1
        out["first_touch"][u[0]] += 1
        w = 2.0 ** (-((t[-1] - t) / DAY) / half_life_days)
        for k in range(n):
            out["linear"][u[k]] += 1 / n
            out["time_decay"][u[k]] += w[k] / w.sum()
            if n == 1:
                pb = 1.0
            elif n == 2:
                pb = 0.5
            else:
                pb = 0.4 if k in (0, n - 1) else 0.2 / (n - 2)
            out["position_based"][u[k]] += pb
    return out


def reference_markov_effects(j, n_units, order):
    counts = {}
    for i in range(len(j.label)):
        u = list(j.unit[j.offsets[i] : j.offsets[i + 1]])
        if not u:
            continue
        padded = [-1] * (order - 1) + u
        states = [tuple(padded[k : k + order][::-1]) for k in range(len(u))]
        path = ["start", *states, "conv" if j.label[i] else "null"]
        for a, b in zip(path[:-1], path[1:], strict=True):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    transient = sorted({a for a, _ in counts}, key=str)
    idx = {s: k for k, s in enumerate(transient)}

    def p_conv(removed_unit):
        q = np.zeros((len(transient), len(transient)))
        r = np.zeros(len(transient))
        for (a, b), c in counts.items():
            # Literal redirection: a transition into a removed state goes to null.
            if b not in ("conv", "null") and removed_unit in b:
                b = "null"
            if b == "conv":
                r[idx[a]] += c
            elif b != "null":
                q[idx[a], idx[b]] += c
        tot = np.zeros(len(transient))
        for (a, _), c in counts.items():
            tot[idx[a]] += c
        x = np.linalg.solve(np.eye(len(transient)) - q / tot[:, None], r / tot)
        return x[idx["start"]]

    base = p_conv(None)
    eff = np.zeros(n_units)
    for unit in set(j.unit.tolist()):
        eff[unit] = 1 - p_conv(unit) / base
    return eff


def random_journeys(seed, n_journeys=60, n_units=8):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 7, size=n_journeys)
    paths = [list(rng.integers(1, n_units, size=n)) for n in lengths]
    days = [sorted(rng.integers(0, 30, size=n).tolist()) for n in lengths]
    labels = rng.integers(0, 2, size=n_journeys)
    labels[0], lengths[0] = 1, max(lengths[0], 1)  # at least one conversion
    paths[0] = paths[0] or [2]
    days[0] = days[0] or [0]
    return make_journeys(paths, labels, days)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorized_matches_reference_loop(seed):
    n_units = 8
    j = random_journeys(seed, n_units=n_units)
    n_conv = sum(1 for i in range(len(j.label)) if j.label[i] and j.offsets[i + 1] > j.offsets[i])
    ref = reference_rules(j, n_units, half_life_days=5.0)
    for name, fn in RULES.items():
        kw = {"half_life_days": 5.0} if name == "time_decay" else {}
        got = fn(j, n_units, **kw)
        np.testing.assert_allclose(got, ref[name], atol=1e-10, err_msg=name)
        assert got.sum() == pytest.approx(n_conv)
    for order in (1, 2):
        ref_eff = reference_markov_effects(j, n_units, order)
        np.testing.assert_allclose(markov_removal_effects(j, n_units, order=order), ref_eff, atol=1e-10)
        assert markov_removal(j, n_units, order=order).sum() == pytest.approx(n_conv)


def test_iterative_absorption_matches_reference(monkeypatch):
    import journeynet.attribution.classic as classic

    # Force the batched fixed-point path used for large higher-order chains.
    monkeypatch.setattr(classic, "_DIRECT_MAX_STATES", 0)
    j = random_journeys(3)
    for order in (1, 2):
        np.testing.assert_allclose(
            markov_removal_effects(j, 8, order=order),
            reference_markov_effects(j, 8, order),
            atol=1e-10,
        )
    np.testing.assert_allclose(markov_removal_effects(TEXTBOOK, 5), fl(0, 0, F(1, 2), 1, 1), atol=1e-12)
