"""Calibrated probabilities: Platt scaling of the net's logit, fitted on validation journeys.

A net picked by validation AUC after a few epochs ranks well but its probabilities drift
(over-confident once it starts to overfit). Scaling and shifting the logit,
``sigmoid(a * logit + b)``, keeps the ranking (AUC unchanged for ``a > 0``) and fixes
the probabilities; ``a`` alone is temperature scaling. The two numbers live in the net's
``logit_scale`` and ``logit_bias`` buffers, so checkpoints, attribution and prediction
all use calibrated probabilities.

Quickstart
----------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=20000)
>>> y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 * z - 1)))).astype(int)
>>> a, b = fit_platt(z, y)
>>> round(a, 1), round(b, 1)
(0.5, -1.0)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize
from torch import nn

log = logging.getLogger(__name__)

_EPS = 1e-7


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Scale and bias minimizing the log-loss of ``sigmoid(a * logits + b)``.

    Parameters
    ----------
    logits : np.ndarray
        Uncalibrated logits, shape (n,).
    y : np.ndarray
        0/1 labels, shape (n,), both classes present.

    Returns
    -------
    tuple[float, float]
        ``(a, b)``; ``a`` is kept >= 0.01 so the ranking never flips.
    """
    z = np.asarray(logits, dtype=np.float64).ravel()
    t = np.asarray(y, dtype=np.float64).ravel()
    if z.shape != t.shape:
        raise ValueError(f"logits and y must have the same shape, got {z.shape} and {t.shape}")
    if len(np.unique(t)) != 2:
        raise ValueError(f"calibration needs both classes, got {np.unique(t).tolist()}")

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        u = theta[0] * z + theta[1]
        # log(1 + e^u) - t u, stable for large |u|
        value = np.logaddexp(0.0, u) - t * u
        r = 1.0 / (1.0 + np.exp(-u)) - t  # d value / d u
        return float(value.mean()), np.array([np.mean(r * z), np.mean(r)])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B",
                   bounds=[(0.01, None), (None, None)])
    return float(res.x[0]), float(res.x[1])


def calibrate(net: nn.Module, journeys: Any, batch_size: int = 4096) -> dict[str, float]:
    """Fit the net's ``logit_scale`` and ``logit_bias`` on ``journeys`` (validation).

    Parameters
    ----------
    net : nn.Module
        An :class:`~journeynet.model.net.AttentionLSTM` (anything with those two buffers).
    journeys : Journeys
        Labelled journeys the net was not trained on.
    batch_size : int
        Journeys per forward pass.

    Returns
    -------
    dict[str, float]
        ``scale``, ``bias`` and the log-loss on ``journeys`` before and after; with a
        single class (or none) the net is left uncalibrated and the dict is empty.
    """
    from journeynet.model.predict import predict_proba

    y = np.asarray(journeys.label).astype(np.int64)
    if len(np.unique(y)) != 2:
        log.warning("calibration skipped: the validation journeys need both classes")
        return {}
    net.logit_scale.fill_(1.0)
    net.logit_bias.fill_(0.0)
    p, _ = predict_proba(net, journeys, batch_size=batch_size)
    p = np.clip(p, _EPS, 1 - _EPS)
    z = np.log(p) - np.log1p(-p)
    a, b = fit_platt(z, y)
    with torch.no_grad():
        net.logit_scale.fill_(a)
        net.logit_bias.fill_(b)
    after = 1.0 / (1.0 + np.exp(-(a * z + b)))
    out = {"scale": a, "bias": b, "val_logloss_before": _logloss(y, p), "val_logloss_after": _logloss(y, after)}
    log.info("calibration on %d validation journeys: scale %.3f, bias %.3f, log-loss %.4f -> %.4f",
             len(y), a, b, out["val_logloss_before"], out["val_logloss_after"])
    return out


def _logloss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted and observed conversion rate per quantile bin of ``p``.

    Parameters
    ----------
    y : np.ndarray
        0/1 labels, shape (n,).
    p : np.ndarray
        Predicted probabilities, shape (n,).
    bins : int
        Number of quantile bins (deciles by default); ties may merge bins.

    Returns
    -------
    pd.DataFrame
        ``bin``, ``n``, ``predicted``, ``observed``.
    """
    p = np.asarray(p, dtype=np.float64)
    b = pd.qcut(pd.Series(p).rank(method="first"), bins, labels=False)
    frame = pd.DataFrame({"bin": b, "p": p, "y": np.asarray(y, dtype=np.float64)})
    out = frame.groupby("bin").agg(n=("y", "size"), predicted=("p", "mean"), observed=("y", "mean"))
    return out.reset_index()
