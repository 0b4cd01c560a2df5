"""The neural funnel engine: at zero network output it is the plain funnel; interventions pass through exposures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from journeynet.causal.data import build_funnel_data
from journeynet.causal.fit import FunnelNet
from journeynet.causal.funnel import expected_conversions
from journeynet.causal.interventions import removal_effects
from journeynet.causal.neural import (
    NeuralFunnel,
    NeuralFunnelConfig,
    NeuralFunnelNet,
    expected_conversions_tv,
    fit_neural_funnel,
    neural_removal_effects,
    propagate_tv,
)
from journeynet.causal.sample import SimConfig, simulate

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def data():
    sim = simulate(SimConfig(pool=1_500, days=35, seed=3))
    return build_funnel_data(sim.touchpoints, sim.spend, None)


@pytest.mark.parametrize("cell,hazard", [("gru", False), ("lstm", True)])
def test_zero_output_likelihood_equals_the_plain_funnel(data, cell, hazard):
    plain = FunnelNet(data, 2, seed=0)
    neural = NeuralFunnelNet(data, 2, seed=0, hidden=8, cell=cell, hazard=hazard)
    with torch.no_grad():  # move the funnel parameters off their start so the check is not trivial
        for (name, a), (name_b, b) in zip(plain.named_parameters(), neural.named_parameters(), strict=False):
            assert name == name_b
            a.add_(0.05 * torch.randn_like(a))
            b.copy_(a)
    ll_plain, ll_neural = plain.log_likelihood(), neural.log_likelihood()
    torch.testing.assert_close(ll_neural, ll_plain, rtol=0, atol=1e-9)
    torch.testing.assert_close(neural.sequence_log_likelihood(), plain.sequence_log_likelihood(), rtol=0, atol=1e-9)
    # the network still gets a gradient through its (zero) output layer
    ll_neural.backward()
    assert neural.rates.head.weight.grad.abs().sum() > 0


def _random_head(net: NeuralFunnelNet, scale: float = 0.3) -> None:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        net.rates.head.weight.copy_(scale * torch.randn(net.rates.head.weight.shape, generator=g,
                                                        dtype=torch.float64))


def test_switching_a_unit_off_changes_the_network_output_from_that_day_on(data):
    net = NeuralFunnelNet(data, 2, seed=0, hidden=8, hazard=True)
    _random_head(net)
    spend = net.spend.clone()
    u, day = 1, 10
    off = spend.clone()
    off[day:, u] = 0.0
    with torch.no_grad():
        a, b = net.rates(spend), net.rates(off)
    for k in a:
        torch.testing.assert_close(a[k][:day], b[k][:day], rtol=0, atol=0)  # causal: the past is unchanged
        assert (a[k][day:] - b[k][day:]).abs().max() > 1e-6, k
    # the other units' touch probabilities move with the exposure history, the unit's own drop to zero
    with torch.no_grad():
        qa, qb = net.probabilities(spend), net.probabilities(off)
    assert torch.all(qb["p"][day:, u] == 0)
    other = [v for v in range(len(data.units)) if v != u and spend[day:, v].sum() > 0]
    assert (qa["p"][day:, other] - qb["p"][day:, other]).abs().max() > 0


def _model(data, head_scale: float = 0.0) -> NeuralFunnel:
    net = NeuralFunnelNet(data, 2, seed=0, hidden=8, hazard=True)
    if head_scale:
        _random_head(net, head_scale)
    return NeuralFunnel(params=net.to_params(), rate_net=net.rates.eval())


def test_expected_conversions_tv_at_zero_output_equals_the_plain_propagation(data):
    model = _model(data)
    spend = data.spend
    np.testing.assert_allclose(expected_conversions_tv(model, spend), expected_conversions(model.params, spend),
                               rtol=1e-10, atol=1e-12)
    off = np.zeros(len(data.units), dtype=bool)
    off[[0, 2]] = True
    np.testing.assert_allclose(expected_conversions_tv(model, spend, convert_off=off),
                               expected_conversions(model.params, spend, convert_off=off), rtol=1e-10, atol=1e-12)
    plain = removal_effects(model.params, spend)
    neural = neural_removal_effects(model, spend)
    np.testing.assert_allclose(neural[["effect", "opener_effect", "closer_effect"]].to_numpy(),
                               plain[["effect", "opener_effect", "closer_effect"]].to_numpy(), rtol=1e-8, atol=1e-9)


def test_numpy_rates_match_the_torch_rates_and_conserve_the_pool(data):
    model = _model(data, head_scale=0.3)
    net = NeuralFunnelNet(data, 2, seed=0, hidden=8, hazard=True)
    net.rates.load_state_dict(model.rate_net.state_dict())
    spend = data.spend * 1.7
    with torch.no_grad():
        q = net.probabilities(torch.as_tensor(spend))
    r = model.rates(spend)
    for k in ("p", "move", "hazard"):
        np.testing.assert_allclose(r[k], q[k].numpy(), rtol=1e-9, atol=1e-12)
    conv, mass = propagate_tv(model.params, r["p"], r["move"], r["hazard"])
    assert conv.sum() + mass.sum() == pytest.approx(model.params.pool, rel=1e-9)


def test_fit_improves_the_likelihood_from_the_plain_start(data):
    model = fit_neural_funnel(data, NeuralFunnelConfig(plain_iter=2, max_iter=3, hidden=4))
    assert model.diagnostics["loss_end"] <= model.diagnostics["loss_start"]
    effects = neural_removal_effects(model, data.spend)
    assert np.isfinite(effects["effect"]).all()
