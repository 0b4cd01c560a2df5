"""The event-driven likelihood against a plain day-by-day computation, every mechanism on."""

from math import lgamma

import numpy as np
import pytest
import torch

from journeynet.causal.data import build_funnel_data
from journeynet.causal.funnel import N_STAGES as S
from journeynet.causal.likelihood import FunnelNet, Mechanisms
from journeynet.causal.sample import SimConfig, simulate


def day_by_day(net: FunnelNet) -> tuple[np.ndarray, float]:
    """Per-sequence log-likelihoods and the whole log-likelihood, one sequence and one day at a time."""
    d = net.data
    q = {k: v.detach().numpy() for k, v in net.probabilities().items()}
    p, unpaid = q["p"], q["unpaid"]
    recent = d.recent_exposure(net.mech.wear_window) if net.mech.wear else np.zeros(len(d.paid))

    def quiet_day(a: np.ndarray, t: int) -> np.ndarray:
        e = np.prod(1 - p[t], 0) * np.prod(1 - unpaid, 0)
        return np.einsum("ks,kst->kt", a * e * (1 - q["hazard_t"][t]), q["drift_t"][t])

    def sequence(i: int) -> float:
        a = q["pi0"].copy()
        for t in range(d.first_day[i]):
            a = quiet_day(a, t)
        end = d.conv_day[i] if d.conv_day[i] >= 0 else d.end_day[i]
        for t in range(d.first_day[i], end + 1):
            mine = (d.paid[:, 0] == i) & (d.paid[:, 1] == t)
            touches = sorted(zip(d.paid[mine, 2], d.paid[mine, 3], recent[mine], strict=True))
            chans = set(d.unpaid[(d.unpaid[:, 0] == i) & (d.unpaid[:, 1] == t), 2])
            touched = {int(u) for u, _, _ in touches}
            e = np.ones(S)
            for u in range(p.shape[1]):
                e = e * (p[t, u] if u in touched else 1 - p[t, u])
            for c in range(unpaid.shape[0]):
                e = e * (unpaid[c] if c in chans else 1 - unpaid[c])
            v = a * e
            converts, route = d.conv_day[i] == t, d.conv_route[i]
            for u, moves, n_recent in touches:
                w = np.exp(-q["wear"] * n_recent)
                move = q["move"][u]
                if converts and route == u:
                    caused = w * (v @ move[:, S]).sum()
                    after = v + w * (v @ move[:, :S] - v)
                    before = v * (1 - p[t, u]) / p[t, u]
                    captured = ((after + before) * q["hazard_t"][t]).sum() * q["captured"][t, u]
                    return float(np.log(caused + captured))
                if moves:
                    v = v + w * (v @ move[:, :S] - v)
            if converts:
                m = (v * q["hazard_t"][t]).sum() * q["session"][-1 - route] * q["uncaptured"][t]
                return float(np.log(m))
            a = np.einsum("ks,kst->kt", v * (1 - q["hazard_t"][t]), q["drift_t"][t])
        return float(np.log(a.sum()))

    per_seq = np.array([sequence(i) for i in range(d.n_sequences)])
    never = q["pi0"].copy()
    for t in range(d.n_days):
        never = quiet_day(never, t)
    n = d.n_sequences
    pool = n + float(q["pool_extra"])
    total = per_seq.sum() + (pool - n) * np.log(never.sum()) + lgamma(pool + 1) - lgamma(pool - n + 1)
    return per_seq, float(total)


@pytest.fixture(scope="module")
def world():
    sim = simulate(SimConfig(seed=3, pool=300, days=40, dark_weeks=1))
    data = build_funnel_data(sim.touchpoints, sim.spend)
    # some customers observed only until a few days before the end (a later sequence's window)
    last = np.zeros(data.n_sequences, dtype=np.int64)
    np.maximum.at(last, data.paid[:, 0], data.paid[:, 1])
    np.maximum.at(last, data.unpaid[:, 0], data.unpaid[:, 1])
    early = (data.conv_day < 0) & (last < data.n_days - 6)
    data.end_day = np.where(early, data.n_days - 4, data.end_day)
    assert early.sum() >= 5
    return data


@pytest.mark.parametrize("mech", [Mechanisms(), Mechanisms(capture=False, demand=False, signed=False, wear=False)],
                         ids=["every-mechanism", "plain"])
def test_event_driven_pass_equals_the_day_by_day_computation(world, mech):
    net = FunnelNet(world, n_segments=2, seed=1, mechanisms=mech)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # away from the symmetric start: demand, wear and capture all matter
        for param in net.parameters():
            param.add_(0.4 * torch.randn(param.shape, generator=g, dtype=param.dtype))
        net.wear_raw.fill_(-0.5)
    per_seq, total = day_by_day(net)
    with torch.no_grad():
        fast = net.sequence_log_likelihood().numpy()
        fast_total = float(net.log_likelihood())
    assert np.abs(fast - per_seq).max() < 1e-9
    assert fast_total == pytest.approx(total, rel=1e-10)
    assert (world.conv_day >= 0).sum() >= 10 and (world.conv_route >= 0).sum() >= 3  # both conversion kinds seen
