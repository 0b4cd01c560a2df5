"""Summary-feature baselines, binary_metrics, and the model figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, log_loss, roc_auc_score

from journeynet.model.baselines import binary_metrics, fit_baselines, summary_features
from journeynet.model.predict import attention_by_position
from journeynet.plots import plot_attention_by_position, plot_pr_curves
from test_model import N_CHANNELS, make_journeys


@pytest.fixture(scope="module")
def journeys() -> object:
    return make_journeys(n=1500, seed=2)


def test_summary_features_by_hand() -> None:
    j = make_journeys(n=5, seed=3).subset([0, 1])
    X = summary_features(j, n_channels=N_CHANNELS)
    assert X.shape == (2, 3 * N_CHANNELS + 4)
    for i in range(2):
        ch = j.channel[j.offsets[i]:j.offsets[i + 1]]
        t = j.time[j.offsets[i]:j.offsets[i + 1]] / 3.6e12
        np.testing.assert_array_equal(X[i, :N_CHANNELS], np.bincount(ch, minlength=N_CHANNELS))
        assert X[i, N_CHANNELS + ch[0]] == 1 and X[i, N_CHANNELS:2 * N_CHANNELS].sum() == 1
        assert X[i, 2 * N_CHANNELS + ch[-1]] == 1
        gaps = np.diff(t)
        expected = [len(ch), np.log1p(t[-1] - t[0]),
                    np.log1p(gaps.mean()) if len(gaps) else 0.0,
                    np.log1p(gaps.min()) if len(gaps) else 0.0]
        np.testing.assert_allclose(X[i, -4:], expected, rtol=1e-9, atol=1e-9)


def test_baselines_find_the_planted_rule(journeys: object) -> None:
    idx = np.random.default_rng(0).permutation(len(journeys))
    splits = {"train": idx[:1000], "test": idx[1000:]}
    probs = fit_baselines(journeys, splits, seed=0, n_channels=N_CHANNELS)
    assert set(probs) == {"logistic", "gbdt"}
    y = journeys.label[splits["test"]]
    for name, p in probs.items():
        assert p.shape == y.shape
        assert binary_metrics(y, p)["auc"] > 0.6, name


@pytest.mark.parametrize(
    "p", [np.array([0.1, 0.8, 0.6, 0.3, 0.5]), np.array([0.0, 1.0, 1.0, 0.0, 0.5])],
    ids=["interior", "hard_zeros_and_ones"],
)
def test_binary_metrics_match_sklearn(p: np.ndarray) -> None:
    y = np.array([0, 1, 1, 0, 1])
    m = binary_metrics(y, p)
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["ap"] == pytest.approx(average_precision_score(y, p))
    assert m["logloss"] == pytest.approx(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)))
    assert np.isfinite(m["logloss"])


def test_binary_metrics_rejects_one_class() -> None:
    with pytest.raises(ValueError, match="both classes"):
        binary_metrics(np.zeros(3), np.full(3, 0.5))


def test_fit_baselines_needs_train_and_test(journeys: object) -> None:
    with pytest.raises(ValueError, match="missing \\['test'\\]"):
        fit_baselines(journeys, {"train": np.arange(10)})


def test_plots_return_figures(journeys: object) -> None:
    att = np.ones(journeys.n_touches) / np.repeat(journeys.lengths, journeys.lengths)
    fig = plot_attention_by_position(attention_by_position(journeys, att))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["non-converting", "converting"]
    y = journeys.label
    fig2 = plot_pr_curves({"a": (y, np.linspace(0, 1, len(y))), "b": (y, y * 0.9 + 0.05)})
    assert len(fig2.axes[0].get_lines()) >= 1
    with pytest.raises(ValueError, match="curves is empty"):
        plot_pr_curves({})
