"""Baselines on journey summary features, and the metrics every model is judged by.

Summaries follow Shao and Li (2011): channel counts, first and last channel, length and
time gaps, built vectorized from the flat Journeys arrays. A logistic regression and a
histogram gradient-boosting classifier are fit on the same train split the deep model
uses, and score its test split.

Quickstart
----------
>>> import numpy as np
>>> from journeynet.model.baselines import binary_metrics
>>> m = binary_metrics(np.array([0, 1, 1, 0]), np.array([0.1, 0.8, 0.6, 0.3]))
>>> round(m["auc"], 3), sorted(m)
(1.0, ['ap', 'auc', 'logloss'])
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

log = logging.getLogger(__name__)

_NS_PER_HOUR = 3.6e12
_EPS = 1e-7


def summary_features(journeys: Any, n_channels: int | None = None) -> np.ndarray:
    """Fixed-width summary of each journey.

    Parameters
    ----------
    journeys : Journeys
        Needs ``offsets``, per-touch ``channel`` ids and ``time`` (int64 ns).
    n_channels : int | None
        Channel id range; defaults to ``max(channel) + 1``. Pass the vocabulary size so
        different journey sets give the same columns.

    Returns
    -------
    np.ndarray
        float64, shape (n_journeys, 3 * n_channels + 4): channel counts, first-channel
        one-hot, last-channel one-hot, length, log1p total duration (hours), log1p mean
        gap and log1p min gap (hours; 0 for single-touch journeys).
    """
    offsets = np.asarray(journeys.offsets, dtype=np.int64)
    channel = np.asarray(journeys.channel, dtype=np.int64)
    time = np.asarray(journeys.time, dtype=np.int64)
    lengths = np.diff(offsets)
    if len(lengths) and lengths.min() < 1:
        raise ValueError(f"every journey needs >= 1 touch, got min length {lengths.min()}")
    n_ch = int(channel.max()) + 1 if n_channels is None else int(n_channels)
    if len(channel) and channel.max() >= n_ch:
        raise ValueError(f"channel ids must be < n_channels={n_ch}, got max {channel.max()}")
    n_j = len(lengths)
    first, last = offsets[:-1], offsets[1:] - 1  # (n_j,) touch index
    jid = np.repeat(np.arange(n_j), lengths)  # (n_touch,)
    counts = np.bincount(jid * n_ch + channel, minlength=n_j * n_ch).reshape(n_j, n_ch)
    eye = np.eye(n_ch)
    # Gap before each touch in hours; the first touch of a journey has no gap.
    gap = np.diff(time, prepend=time[:1]).astype(np.float64) / _NS_PER_HOUR  # (n_touch,)
    is_first = np.zeros(len(time), dtype=bool)
    is_first[first] = True
    gap_sum = np.bincount(jid, weights=np.where(is_first, 0.0, gap), minlength=n_j)
    n_gaps = lengths - 1
    mean_gap = np.divide(gap_sum, n_gaps, out=np.zeros(n_j), where=n_gaps > 0)
    min_gap = np.minimum.reduceat(np.where(is_first, np.inf, gap), first) if n_j else np.zeros(0)
    min_gap = np.where(np.isfinite(min_gap), min_gap, 0.0)
    duration = (time[last] - time[first]) / _NS_PER_HOUR
    scalars = np.stack(
        [lengths, np.log1p(duration), np.log1p(mean_gap), np.log1p(np.maximum(min_gap, 0.0))],
        axis=1,
    )
    return np.hstack([counts, eye[channel[first]], eye[channel[last]], scalars]).astype(np.float64)


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """AUC, log-loss and average precision of probabilities ``p`` for labels ``y``.

    Parameters
    ----------
    y : np.ndarray
        0/1 labels, shape (n,); both classes must be present.
    p : np.ndarray
        Predicted probabilities, shape (n,); clipped to [1e-7, 1 - 1e-7] for log-loss.

    Returns
    -------
    dict[str, float]
        ``auc``, ``logloss``, ``ap``.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    p = np.asarray(p, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y and p must have the same shape, got {y.shape} and {p.shape}")
    if len(np.unique(y)) != 2:
        raise ValueError(f"y needs both classes 0 and 1, got {np.unique(y).tolist()}")
    pc = np.clip(p, _EPS, 1 - _EPS)
    return {
        "auc": float(roc_auc_score(y, p)),
        "logloss": float(log_loss(y, pc, labels=[0, 1])),
        "ap": float(average_precision_score(y, p)),
    }


def fit_baselines(
    journeys: Any, splits: dict[str, np.ndarray], seed: int = 0, n_channels: int | None = None
) -> dict[str, np.ndarray]:
    """Fit the summary-feature baselines on ``train`` and score ``test``.

    Parameters
    ----------
    journeys : Journeys
        All journeys; ``splits`` index into them.
    splits : dict[str, np.ndarray]
        Needs ``train`` and ``test`` journey indices.
    seed : int
        Seed of the gradient-boosting early-stopping split.
    n_channels : int | None
        Channel vocabulary size (see :func:`summary_features`).

    Returns
    -------
    dict[str, np.ndarray]
        Test probabilities, shape (len(splits['test']),), for ``logistic`` and ``gbdt``.
    """
    missing = {"train", "test"} - set(splits)
    if missing:
        raise ValueError(f"splits must contain 'train' and 'test', missing {sorted(missing)}")
    X = summary_features(journeys, n_channels)
    y = np.asarray(journeys.label).astype(np.int64)
    tr, te = np.asarray(splits["train"]), np.asarray(splits["test"])
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "gbdt": HistGradientBoostingClassifier(
            max_iter=500, learning_rate=0.05, early_stopping=True, validation_fraction=0.1,
            n_iter_no_change=20, random_state=seed,
        ),
    }
    out: dict[str, np.ndarray] = {}
    for name, model in models.items():
        model.fit(X[tr], y[tr])
        out[name] = model.predict_proba(X[te])[:, 1]
        log.info("baseline %s fit on %d journeys", name, len(tr))
    return out
