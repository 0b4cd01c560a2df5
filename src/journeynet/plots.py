"""Figures of the conversion model: attention by position and precision-recall curves.

Plot functions take tidy data, return a :class:`matplotlib.figure.Figure` and never show
it, so the caller decides whether to save it or send it to TensorBoard. Matplotlib is
imported lazily with the Agg backend, so importing this module costs nothing.

Quickstart
----------
>>> import numpy as np
>>> from journeynet.plots import plot_pr_curves
>>> y = np.array([0, 1, 1, 0]); p = np.array([0.2, 0.9, 0.4, 0.5])
>>> fig = plot_pr_curves({"model": (y, p)})
>>> len(fig.axes)
1
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    """Import pyplot on the non-interactive Agg backend (safe on headless machines)."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - matplotlib is a declared dependency
        raise ImportError("plots need matplotlib: pip install matplotlib") from err
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_attention_by_position(df: pd.DataFrame) -> Figure:
    """Mean attention by position for converting vs non-converting journeys.

    Parameters
    ----------
    df : pd.DataFrame
        Output of :func:`journeynet.model.predict.attention_by_position`: a position column
        (``pos_from_end`` or ``pos_from_start``), ``label`` and ``attention``.

    Returns
    -------
    Figure
        One axes, one line per label.
    """
    pos_col = next((c for c in ("pos_from_end", "pos_from_start") if c in df.columns), None)
    if pos_col is None or not {"label", "attention"} <= set(df.columns):
        raise ValueError(
            "df needs columns pos_from_end|pos_from_start, label, attention; "
            f"got {list(df.columns)}"
        )
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = {1: "converting", 0: "non-converting"}
    for label, part in df.groupby("label"):
        part = part.sort_values(pos_col)
        ax.plot(part[pos_col], part["attention"], marker="o", label=names.get(int(label), label))
    ax.set_xlabel("touches before the end" if pos_col == "pos_from_end" else "touch position")
    ax.set_ylabel("mean attention")
    ax.set_title("Attention by position")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_pr_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Precision-recall curves of several models on the same labels.

    Parameters
    ----------
    curves : dict[str, tuple[np.ndarray, np.ndarray]]
        Model name -> (labels, probabilities).

    Returns
    -------
    Figure
        One axes with a curve per model, average precision in the legend.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if not curves:
        raise ValueError("curves is empty; pass at least one name -> (y, p)")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (y, p) in curves.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ap = average_precision_score(y, p)
        ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    base = float(np.mean(next(iter(curves.values()))[0]))
    ax.axhline(base, color="grey", linestyle=":", label=f"base rate {base:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return fig


def plot_opener_closer(table: pd.DataFrame) -> Figure | None:
    """Paid units placed by interventional opener share (x) and attention opener share (y).

    Marker area follows the unit's removal effect. Returns None when the table has no
    interventional scores (a run without spend).
    """
    paid = table[table["paid"].astype(bool) & table["opener_score"].notna()]
    if paid.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    effect = paid["removal_effect"].clip(lower=0).to_numpy()
    size = 30 + 600 * effect / max(effect.max(), 1e-12)
    y = paid["attention_opener"] if "attention_opener" in paid else np.full(len(paid), np.nan)
    ax.scatter(paid["opener_score"], y, s=size, alpha=0.6)
    for (_, row), yy in zip(paid.iterrows(), y, strict=True):
        ax.annotate(f"{row['channel']}/{row['campaign_type']}", (row["opener_score"], yy), fontsize=7)
    ax.axvline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("opener_score (share of effect via moving customers up the funnel)")
    ax.set_ylabel("attention at journey start (share, converting journeys)")
    ax.set_title("Who opens, who closes")
    ax.set_xlim(-0.05, 1.05)
    fig.tight_layout()
    return fig
