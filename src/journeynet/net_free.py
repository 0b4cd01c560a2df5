"""What ``train.py`` computes without the trained net: the summary baselines and the funnel engine.

It runs in a second process while the net trains (:class:`journeynet.background.Background`),
so this module imports neither Lightning nor the net: the process starts in about half
the time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from journeynet.attribution.interventional import interventional
from journeynet.causal.fit import FunnelFitConfig
from journeynet.model.baselines import fit_baselines

__all__ = ["fit_summary_baselines", "funnel_effects", "net_free_work"]


def fit_summary_baselines(journeys: Any, splits: dict[str, np.ndarray], seed: int,
                          n_channels: int) -> tuple[dict[str, np.ndarray], float]:
    """The baselines' test probabilities and the seconds they took."""
    t0 = time.perf_counter()
    baseline_p = fit_baselines(journeys, splits, seed=seed, n_channels=n_channels)
    return baseline_p, time.perf_counter() - t0


def net_free_work(cfg: DictConfig, inputs: Any, journeys: Any, splits: dict[str, np.ndarray],
                  n_channels: int) -> dict[str, Any]:
    """What does not need the trained net: the summary baselines and the funnel engine's fits.

    Runs in a second process while the net trains (:class:`journeynet.background.Background`).
    """
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    baselines = fit_summary_baselines(journeys, splits, cfg.seed, n_channels)
    return {"baselines": baselines, "funnel": funnel_effects(cfg, inputs)}


def funnel_effects(cfg: DictConfig, inputs: Any) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The interventional engine's table and by-products, or None without spend or with engine=none."""
    a = cfg.attribution
    if inputs.spend is None or a.engine != "funnel":
        return None
    fit_cfg = FunnelFitConfig(**OmegaConf.to_container(a.funnel, resolve=True))
    return interventional(fit_cfg, inputs.touchpoints, inputs.spend, tuple(cfg.response.spend_multiples),
                          a.get("cache_dir"), bool(a.get("refit", False)), int(a.get("response_draws", 20)),
                          experiments=getattr(inputs, "experiments", None))
