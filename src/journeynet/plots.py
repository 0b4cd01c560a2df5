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
    ax.set_title("Attention by position (mean share of a journey's attention)")
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
    ax.set_title("Precision-recall on the test journeys")
    fig.tight_layout()
    return fig


def _repel(boxes: list[list[float]], gap: float) -> list[list[float]]:
    """Shift label boxes ``[x0, y0, x1, y1]`` (display units) up until none overlaps another.

    Greedy from the lowest box up: each box rises just above every placed box it would
    overlap, so labels of nearby or identical points stack instead of printing over each other.
    """
    placed: list[list[float]] = []
    for i in sorted(range(len(boxes)), key=lambda k: (boxes[k][1], boxes[k][0])):
        x0, y0, x1, y1 = boxes[i]
        moved = True
        while moved:
            moved = False
            for px0, py0, px1, py1 in placed:
                if x0 < px1 and px0 < x1 and y0 < py1 and py0 < y1:
                    y0, y1 = py1 + gap, py1 + gap + (y1 - y0)
                    moved = True
        placed.append([x0, y0, x1, y1])
        boxes[i] = placed[-1]
    return boxes


def plot_opener_closer(table: pd.DataFrame) -> Figure | None:
    """Paid units placed by interventional opener share (x) and attention opener share (y).

    Marker area follows the unit's removal effect (conversions). Labels are pushed apart so
    that none overlaps another, with a leader line to their point. Returns None when the
    table has no interventional scores (a run without spend or with ``attribution.engine=none``).
    """
    paid = table[table["paid"].astype(bool) & table["opener_score"].notna()].reset_index(drop=True)
    if paid.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    effect = paid["removal_effect"].clip(lower=0).to_numpy()
    size = 30 + 600 * effect / max(effect.max(), 1e-12)
    x = paid["opener_score"].to_numpy(dtype=float)
    y = (paid["attention_opener"] if "attention_opener" in paid else pd.Series(np.nan, paid.index)).to_numpy(float)
    y = np.where(np.isfinite(y), y, 0.5)  # no attention on converting journeys: place on the midline
    ax.scatter(x, y, s=size, alpha=0.6)
    ax.axvline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("opener_score: share of the removal effect via moving customers up the funnel")
    ax.set_ylabel("attention at journey start (share, converting journeys)")
    ax.set_title(f"Who opens, who closes: {len(paid)} paid units (marker area: removal effect, conversions)")
    ax.set_xlim(-0.05, 1.05)
    ax.set_ylim(-0.05, 1.15)
    labels = [f"{c}/{k} ({e:,.0f})" for c, k, e in zip(paid["channel"], paid["campaign_type"], effect, strict=True)]
    texts = [ax.text(xx, yy, lab, fontsize=7) for xx, yy, lab in zip(x, y, labels, strict=True)]
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [list(t.get_window_extent(renderer).extents) for t in texts]
    offset = 4.0 * fig.dpi / 72  # 4 points to the right of the point
    boxes = [[b[0] + offset, b[1], b[2] + offset, b[3]] for b in boxes]
    for text, box, xx, yy in zip(texts, _repel(boxes, gap=1.0), x, y, strict=True):
        text.remove()
        pos = ax.transData.inverted().transform((box[0], box[1]))
        ax.annotate(text.get_text(), (xx, yy), xytext=tuple(pos), textcoords="data", fontsize=7,
                    va="bottom", arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    return fig
