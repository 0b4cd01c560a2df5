"""Figures: titles and units, and opener/closer labels that never print over each other."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.text import Text

from journeynet.plots import plot_opener_closer, plot_pr_curves


def crowded_table(n: int = 9) -> pd.DataFrame:
    """Paid units whose points nearly coincide, as closers of one platform do."""
    return pd.DataFrame({
        "channel": ["google_ads"] * n, "campaign_type": [f"campaign_{i}" for i in range(n)], "paid": True,
        "opener_score": 0.2 + 0.001 * np.arange(n), "attention_opener": np.full(n, 0.4),
        "removal_effect": np.linspace(10, 90, n),
    })


def test_opener_closer_labels_do_not_overlap() -> None:
    fig = plot_opener_closer(crowded_table())
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # the label, not its leader line
    assert len(boxes) == 9
    overlaps = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
    assert overlaps == []
    assert "removal effect, conversions" in ax.get_title()
    assert ax.texts[-1].get_text() == "google_ads/campaign_8 (90)"


def test_opener_closer_without_interventional_scores_draws_nothing() -> None:
    table = crowded_table().assign(opener_score=np.nan)
    assert plot_opener_closer(table) is None


def test_pr_curves_have_a_title() -> None:
    fig = plot_pr_curves({"model": (np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.4, 0.5]))})
    assert fig.axes[0].get_title() == "Precision-recall on the test journeys"
