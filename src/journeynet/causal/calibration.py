"""Lift-test experiments inside the engine's fit: the model's own counterfactual against the measurement.

An experiment switched a unit (or every unit of a channel) off from ``start`` to
``end`` and measured the conversions it caused in the whole market over that window
plus ``lag_days``. The model's answer to the same question is a difference of two exact
propagations of the expected market pool (:mod:`journeynet.causal.funnel`): with the
spend as it was, and with the unit's spend zero over the window. Here that propagation
is written in torch on the net's :meth:`FunnelNet.probabilities`, so each experiment is
a differentiable term of the fit's objective,

    penalty = sum_e (model_e - measured_e)^2 / (2 se_e^2)   (nats, Gaussian),

and the whole model moves to meet it (the unit's reach, moves, capture and every other
unit's credit), not a rescaled share. :func:`experiment_values` is the same counterfactual
on fitted :class:`FunnelParams` in numpy (reports, draws, the conflict check).

Quickstart::

    from journeynet.causal.calibration import ExperimentPenalty, resolve_experiments
    penalty = ExperimentPenalty(resolve_experiments(frame, data.units, data.dates))
    result = fit_engine(data, cfg, penalty=penalty)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from journeynet.causal.funnel import CONVERTED, N_STAGES, FunnelParams, expected_conversions
from journeynet.causal.likelihood import FunnelNet

if TYPE_CHECKING:
    from journeynet.causal.engine import EngineResult

log = logging.getLogger(__name__)

S = N_STAGES
CONFLICT_Z = 3.0  # |model - measured| beyond this many combined standard errors is a conflict


@dataclass(frozen=True)
class Experiment:
    """One lift test on the model's day grid: ``units`` off over days ``start..end``, counted to ``end + lag``."""

    name: str
    channel: str
    campaign_type: str
    units: tuple[int, ...]
    start: int
    end: int  # inclusive
    lag_days: int
    measured: float
    standard_error: float

    @property
    def last_counted(self) -> int:
        """Last day whose conversions count (inclusive)."""
        return self.end + self.lag_days


def resolve_experiments(frame: pd.DataFrame, units: list[tuple[str, str]],
                        dates: pd.DatetimeIndex) -> list[Experiment]:
    """Experiments of a validated frame (:func:`journeynet.data.experiments.load_experiments`) on a day grid.

    A unit of the spend the model does not know (no touches at all) cannot be tested in
    it: such a row raises ``ValueError`` naming the experiment.
    """
    day0 = pd.Timestamp(dates[0]).normalize()
    out = []
    for row in frame.itertuples(index=False):
        idx = tuple(i for i, (c, k) in enumerate(units)
                    if c == row.channel and (not row.campaign_type or k == row.campaign_type))
        if not idx:
            raise ValueError(f"experiment {row.name!r}: unit {row.channel}/{row.campaign_type} is not in the model")
        start = int((pd.Timestamp(row.start) - day0).days)
        end = int((pd.Timestamp(row.end) - day0).days)
        out.append(Experiment(str(row.name), str(row.channel), str(row.campaign_type), idx, start, end,
                              int(row.lag_days), float(row.incremental_conversions), float(row.standard_error)))
    return out


def off_masks(experiments: list[Experiment], n_days: int, n_units: int) -> np.ndarray:
    """Spend multipliers ``(E + 1, T, U)``: row 0 the factual spend, row ``e + 1`` experiment ``e``'s units off."""
    keep = np.ones((len(experiments) + 1, n_days, n_units))
    for e, exp in enumerate(experiments, start=1):
        keep[e, max(exp.start, 0):max(exp.end + 1, 0), list(exp.units)] = 0.0
    return keep


def _counted(experiments: list[Experiment], n_days: int) -> np.ndarray:
    """``(E, T)`` indicator of the days each experiment counts."""
    out = np.zeros((len(experiments), n_days))
    for e, exp in enumerate(experiments):
        out[e, max(exp.start, 0):min(exp.last_counted, n_days - 1) + 1] = 1.0
    return out


def experiment_values(params: FunnelParams, spend: np.ndarray, experiments: list[Experiment]) -> np.ndarray:
    """The model's incremental conversions for each experiment ``(E,)``, exact numpy propagation."""
    if not experiments:
        return np.zeros(0)
    keep = off_masks(experiments, spend.shape[0], spend.shape[1])
    days = _counted(experiments, spend.shape[0])
    factual = expected_conversions(params, spend)
    return np.array([days[e] @ (factual - expected_conversions(params, spend * keep[e + 1]))
                     for e in range(len(experiments))])


def propagate_torch(pool: Tensor, pi0: Tensor, p: Tensor, move: Tensor, hazard_t: Tensor, drift_t: Tensor,
                    wear: Tensor, wear_window: int) -> Tensor:
    """Expected conversions per day ``(B, T)`` of the pool under touch probabilities ``p`` ``(B, T, U, S)``.

    The torch twin of :func:`journeynet.causal.funnel.propagate` (conversions only:
    capture moves sessions, never conversions): each start stage's row is pushed through
    the units in order, a touch's move weakened by the expected wear-out of the stage's
    recent exposure, then the day's hazard and drift. A spend schedule enters only
    through ``p``: zero spend is zero touch probability.
    """
    b, t, u, _ = p.shape
    daily = p.sum(2)  # (B, T, S)
    csum = torch.cat([torch.zeros_like(daily[:, :1]), torch.cumsum(daily, 1)], 1)
    days = torch.arange(t)
    mu = csum[:, days] - csum[:, (days - wear_window).clamp(min=0)]
    weight = p * torch.exp(-mu * (1.0 - torch.exp(-wear)))[:, :, None, :]  # (B, T, U, S)
    absorbing = torch.zeros((u, 1, S + 1), dtype=p.dtype)
    absorbing[..., CONVERTED] = 1.0  # converted stays converted
    full = torch.cat([move, absorbing], 1)  # (U, S+1, S+1)
    rows = torch.eye(S, S + 1, dtype=p.dtype).expand(b, t, S, S + 1)
    for k in range(u):
        step = rows @ full[k] - rows
        rows = rows + weight[:, :, k, :, None] * step
    # a day is linear in the pool's state: mass -> mass @ A[d], converting mass . c[d] on the way
    touch = rows[..., :S]  # (B, T, S, S)
    a = touch[:, :, None] @ ((1 - hazard_t)[..., None] * drift_t)[None]  # (B, T, K, S, S)
    c = rows[:, :, None, :, CONVERTED] + (touch[:, :, None] @ hazard_t[None, ..., None]).squeeze(-1)  # (B, T, K, S)
    prefix = _prefix_products(a)  # prefix[:, d] = A[0] ... A[d]
    start = (pool * pi0).expand(b, 1, *pi0.shape)  # (B, 1, K, S)
    mass = torch.cat([start, (start[:, :, :, None] @ prefix[:, :-1]).squeeze(-2)], 1)  # (B, T, K, S) each day's start
    return (mass * c).sum((-1, -2))


def _prefix_products(a: Tensor) -> Tensor:
    """Inclusive products ``A[0] A[1] ... A[d]`` along axis 1 in ``log2(T)`` batched steps (Hillis-Steele scan)."""
    t, shift = a.shape[1], 1
    eye = torch.eye(a.shape[-1], dtype=a.dtype).expand(a.shape[0], 1, *a.shape[2:])
    while shift < t:
        earlier = torch.cat([eye.expand(-1, shift, *a.shape[2:]), a[:, :-shift]], 1)
        a = earlier @ a
        shift *= 2
    return a


def propagate_params(params: FunnelParams, spend: np.ndarray, keep: np.ndarray | None = None) -> Tensor:
    """:func:`propagate_torch` on numpy :class:`FunnelParams` (tests; ``keep`` as in :func:`off_masks`)."""
    keep = np.ones((1, *spend.shape)) if keep is None else keep
    dt = torch.float64
    p = torch.as_tensor(params.touch_prob(spend), dtype=dt)[None] * torch.as_tensor(keep, dtype=dt)[..., None]
    hazard, drift = params.daily_rates(spend.shape[0])
    return propagate_torch(torch.tensor(params.pool, dtype=dt), torch.as_tensor(params.pi0, dtype=dt), p,
                           torch.as_tensor(params.move, dtype=dt), torch.as_tensor(hazard, dtype=dt),
                           torch.as_tensor(drift, dtype=dt), torch.tensor(params.wear, dtype=dt),
                           params.wear_window)


class ExperimentPenalty:
    """The experiments' Gaussian misfit in nats, a ``penalty`` for :func:`journeynet.causal.engine.fit_engine`.

    Values are whole-market conversions: the net's pool is scaled by
    ``1 / sample_fraction`` as :meth:`FunnelNet.to_params` does, so a group refit on a
    share of the customers answers on the same scale.
    """

    def __init__(self, experiments: list[Experiment]) -> None:
        self.experiments = list(experiments)
        self.measured = torch.tensor([e.measured for e in self.experiments], dtype=torch.float64)
        self.se = torch.tensor([e.standard_error for e in self.experiments], dtype=torch.float64)

    def model_values(self, net: FunnelNet) -> Tensor:
        """The net's incremental conversions for each experiment ``(E,)``, differentiable."""
        q = net.probabilities()
        t, u = net.spend.shape
        keep = torch.as_tensor(off_masks(self.experiments, t, u), dtype=torch.float64)
        pool = (net.data.n_sequences + q["pool_extra"]) / net.data.sample_fraction
        p = q["p"][None] * keep[..., None]
        conv = propagate_torch(pool, q["pi0"], p, q["move"], q["hazard_t"], q["drift_t"], q["wear"],
                               net.mech.wear_window)
        days = torch.as_tensor(_counted(self.experiments, t), dtype=torch.float64)
        return ((conv[0][None] - conv[1:]) * days).sum(1)

    def __call__(self, net: FunnelNet) -> Tensor:
        """Sum over experiments of ``(model - measured)^2 / (2 se^2)``."""
        if not self.experiments:
            return torch.zeros((), dtype=torch.float64)
        z = (self.model_values(net) - self.measured) / self.se
        return 0.5 * (z ** 2).sum()


def conflicts(experiments: list[Experiment], spend: np.ndarray, params: FunnelParams,
              draws: list[FunnelParams], threshold: float = CONFLICT_Z) -> list[dict[str, Any]]:
    """Each experiment against the journeys' model: its value, spread over the draws, and the z-score.

    ``z = (model - measured) / sqrt(se^2 + sd_model^2)``, the model's ``sd`` from its
    draws (0 without draws): beyond ``threshold`` both uncertainties together do not
    explain the gap, and a warning names the unit.
    """
    model = experiment_values(params, spend, experiments)
    spread = np.stack([experiment_values(d, spend, experiments) for d in draws]) if draws else None
    sd = spread.std(0, ddof=1) if spread is not None and len(draws) > 1 else np.zeros(len(experiments))
    out = []
    for e, exp in enumerate(experiments):
        z = (model[e] - exp.measured) / np.sqrt(exp.standard_error ** 2 + sd[e] ** 2)
        flagged = bool(abs(z) > threshold)
        if flagged:
            log.warning("experiment %r on %s/%s conflicts with the journeys: measured %.1f +/- %.1f, the "
                        "uncalibrated model says %.1f +/- %.1f (z = %.1f); calibration follows the experiment",
                        exp.name, exp.channel, exp.campaign_type or "*", exp.measured, exp.standard_error,
                        model[e], sd[e], z)
        out.append({"model": float(model[e]), "model_sd": float(sd[e]), "z_conflict": float(z), "conflict": flagged})
    return out


def experiment_report(experiments: list[Experiment], spend: np.ndarray, uncalibrated: EngineResult,
                      calibrated: EngineResult) -> list[dict[str, Any]]:
    """``metrics.json``'s ``experiments``: each with the model's value before and after, in standard errors."""
    before = conflicts(experiments, spend, uncalibrated.params, uncalibrated.draws)
    after = experiment_values(calibrated.params, spend, experiments)
    rows = []
    for exp, b, a in zip(experiments, before, after, strict=True):
        rows.append({
            "name": exp.name, "channel": exp.channel, "campaign_type": exp.campaign_type,
            "measured": exp.measured, "standard_error": exp.standard_error,
            "model_before": b["model"], "model_before_sd": b["model_sd"],
            "z_before": (b["model"] - exp.measured) / exp.standard_error,
            "model_after": float(a), "z_after": float((a - exp.measured) / exp.standard_error),
            "z_conflict": b["z_conflict"], "conflict": b["conflict"],
        })
    return rows
