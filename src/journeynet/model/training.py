"""The model half of ``train.py``: journeys, the attention-LSTM, baselines, metrics.

Everything is built from the composed Hydra config with ``hydra.utils.instantiate``;
sizes that come from the data (vocabulary sizes) are passed in, not repeated in YAML.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from journeynet.data.calendar import calendar_window, with_calendar
from journeynet.data.history import with_history
from journeynet.data.journeys import Journeys, Vocab, build_journeys, split_journeys
from journeynet.data.partition import concat_journeys
from journeynet.model.baselines import binary_metrics
from journeynet.model.calibration import calibrate
from journeynet.model.datamodule import JourneyDataModule
from journeynet.model.module import JourneyModule
from journeynet.model.predict import predict_proba
from journeynet.model.shards import StoreForRun
from journeynet.net_free import fit_summary_baselines
from journeynet.progress import progress_enabled

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """What the attribution step and the writers need from training."""

    vocab: Vocab
    journeys: Journeys  # all journeys, test ones included
    splits: dict[str, np.ndarray]
    module: JourneyModule
    metrics: dict[str, Any]
    test_p: np.ndarray
    test_attention: np.ndarray  # per touch of the test journeys
    best_ckpt: str
    baseline_p: dict[str, np.ndarray]


def make_journeys(cfg: DictConfig, touchpoints: pd.DataFrame, spend: pd.DataFrame | None,
                  test_touchpoints: pd.DataFrame | None) -> tuple[Vocab, Journeys, dict[str, np.ndarray]]:
    """Vocabulary, journeys and splits; a held-out test file becomes the test split.

    Every journey carries its customer's earlier journeys (``Journeys.history``, per
    ``customer_id``: see :mod:`journeynet.data.history` on ``data.split_group``); a
    held-out file's from that file alone, as ``predict.py`` scores it. Every journey also
    carries its place in the data window (``Journeys.calendar``, :mod:`journeynet.data.calendar`):
    the window is the training file's; a held-out file is placed against it, with its own
    last touch as the data's end, as ``predict.py`` places a new file.
    """
    d = cfg.data
    vocab = Vocab.fit(touchpoints, spend)
    journeys = build_journeys(touchpoints, vocab, lookback_days=d.lookback_days, max_len=d.max_len)
    journeys = with_calendar(with_history(journeys))
    if test_touchpoints is None:
        splits = split_journeys(journeys, d.val_fraction, d.test_fraction, by=d.split, seed=cfg.seed,
                                group_pattern=d.get("split_group"))
        return vocab, journeys, splits
    inner = split_journeys(journeys, d.val_fraction, 0.0, by=d.split, seed=cfg.seed,
                           group_pattern=d.get("split_group"))
    test = build_journeys(test_touchpoints, vocab, lookback_days=d.lookback_days, max_len=d.max_len)
    test = with_calendar(with_history(test), window=calendar_window(journeys))
    n = len(journeys)
    splits = {"train": inner["train"], "val": inner["val"], "test": np.arange(n, n + len(test))}
    return vocab, concat_journeys([journeys, test]), splits


def continues_after_fit(global_rank: int) -> bool:
    """Whether this process goes on after ``trainer.fit``: only global rank 0 does.

    Evaluation, baselines, attribution and the outputs run once, on rank 0; the other
    ranks of a multi-process trainer stop once fit (and its collectives) is done, so the
    run dir gets one set of files.
    """
    return global_rank == 0


def train_model(cfg: DictConfig, vocab: Vocab, journeys: Journeys | StoreForRun, splits: dict[str, np.ndarray],
                logger: Any, callbacks: list[Any], with_baselines: bool = True) -> TrainedModel | None:
    """Fit the attention-LSTM, score the test split with the best checkpoint, compare with the baselines.

    ``with_baselines=False`` leaves the comparison to :func:`add_baselines`, for baselines
    fitted elsewhere (a second process, while the net trained).

    Returns None on every rank but global rank 0 of a multi-process trainer. When
    ``journeys`` is a :class:`~journeynet.model.shards.StoreForRun` (a journey store under
    several processes) each rank trains on its own shards, and rank 0 then reads the whole
    store for the evaluation and the attribution that follow.
    """
    sharded = isinstance(journeys, StoreForRun)
    if sharded:
        dm = journeys.datamodule(cfg)
    else:
        dm = JourneyDataModule(journeys, splits, batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                               bucket=cfg.data.get("bucket", True), seed=cfg.seed)
    extra_net = {"window": run_window(cfg, journeys, splits)} if cfg.model.get("calendar") else {}
    net = instantiate(cfg.model, n_channels=vocab.n_channels, n_campaigns=vocab.n_campaigns, **extra_net)
    module: JourneyModule = instantiate(cfg.module, net=net)
    bar = bool(cfg.trainer.get("enable_progress_bar", True)) and progress_enabled()
    # the shards are already dealt to ranks; Lightning's sampler would deal each rank's share again
    extra: dict[str, Any] = {"use_distributed_sampler": False} if sharded else {}
    budget = cfg.get("step_budget")
    if budget and not sharded:  # a rank's sharded batch count needs the process group, which fit starts
        steps = -(-len(dm.train_dataloader()) // int(cfg.trainer.get("accumulate_grad_batches", 1) or 1))
        extra["max_epochs"] = epochs_within_budget(int(cfg.trainer.max_epochs), steps, int(budget))
        if extra["max_epochs"] < cfg.trainer.max_epochs:
            log.info("step_budget=%d: %d epochs of %d steps (trainer.max_epochs=%d)", budget, extra["max_epochs"],
                     steps, cfg.trainer.max_epochs)
    trainer: pl.Trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks, enable_progress_bar=bar,
                                      **extra)
    if sharded:
        log.info("training on the shards of %s, each rank its own", journeys.path)
    else:
        log.info("training on %d journeys (%d val, %d test)", len(splits["train"]), len(splits["val"]),
                 len(splits["test"]))
    t0, c0 = time.perf_counter(), time.process_time()
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))
    train_seconds, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    if not continues_after_fit(trainer.global_rank):
        return None
    if sharded:
        _, journeys, splits = journeys.read(cfg, vocab)
    ckpt = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
    best = JourneyModule.load(ckpt) if ckpt else module.eval()
    calibration = calibrate(best.net, journeys.subset(splits["val"])) if len(splits["val"]) else {}
    if ckpt and calibration:
        _store_calibration(ckpt, best.net)
    test = journeys.subset(splits["test"])
    p, attention = predict_proba(best.net, test)
    metrics = {f"test_{k}": v for k, v in binary_metrics(test.label.astype(int), p).items()}
    metrics["val_auroc"] = float(trainer.callback_metrics.get("val/auroc", np.nan))
    metrics["train_seconds"] = train_seconds
    metrics["train_cpu_seconds"] = train_cpu
    metrics["epochs"] = int(trainer.current_epoch)
    metrics["steps"] = int(trainer.global_step)
    metrics["calibration"] = calibration
    trained = TrainedModel(vocab, journeys, splits, best, metrics, p, attention, ckpt, {})
    if with_baselines:
        add_baselines(trained, *fit_summary_baselines(journeys, splits, cfg.seed, vocab.n_channels))
    return trained


def run_window(cfg: DictConfig, journeys: Journeys | StoreForRun, splits: dict[str, np.ndarray]) -> list[int] | None:
    """The training data's window (``model.calendar``): the store's, else the span of all but a held-out file."""
    if isinstance(journeys, StoreForRun):
        return journeys.window()
    held_out = bool(cfg.data.get("test_touchpoints"))
    window = calendar_window(journeys, np.r_[splits["train"], splits["val"]] if held_out else None)
    return None if window is None else list(window)


def epochs_within_budget(max_epochs: int, steps_per_epoch: int, budget: int) -> int:
    """Whole epochs within ``budget`` optimizer steps: at least one, at most ``max_epochs``."""
    return max(1, min(max_epochs, budget // max(steps_per_epoch, 1)))


def add_baselines(trained: TrainedModel, baseline_p: dict[str, np.ndarray], seconds: float) -> None:
    """Score the baselines on the test split beside the net, with the verdict and the log line."""
    y = trained.journeys.label[trained.splits["test"]].astype(int)
    metrics = trained.metrics
    metrics["baseline_seconds"] = seconds
    metrics["baselines"] = {}
    for name, bp in baseline_p.items():
        m = {f"test_{k}": v for k, v in binary_metrics(y, bp).items()}
        metrics["baselines"][name] = m
        metrics.update({f"{name}_{k}": v for k, v in m.items()})
    metrics["verdict"] = verdict(metrics)
    trained.baseline_p = baseline_p
    log.info("test AUC %.4f (logistic %.4f, gbdt %.4f)", metrics["test_auc"], metrics["logistic_test_auc"],
             metrics["gbdt_test_auc"])


def _store_calibration(path: str, net: Any) -> None:
    """Write the fitted calibration buffers into the best checkpoint, so it scores the same."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for name in ("logit_scale", "logit_bias"):
        ckpt["state_dict"][f"net.{name}"] = getattr(net, name).detach().cpu().clone()
    torch.save(ckpt, path)


def verdict(metrics: dict[str, Any]) -> str:
    """Say plainly whether the deep model earned its place against gradient boosting."""
    gb_auc, gb_ll = metrics["gbdt_test_auc"], metrics["gbdt_test_logloss"]
    if metrics["test_auc"] > gb_auc and metrics["test_logloss"] < gb_ll:
        return "the attention-LSTM beats gradient boosting on summary features (AUC and log-loss)"
    return ("the attention-LSTM does NOT beat gradient boosting on summary features "
            f"(AUC {metrics['test_auc']:.4f} vs {gb_auc:.4f}, log-loss {metrics['test_logloss']:.4f} vs {gb_ll:.4f})")
