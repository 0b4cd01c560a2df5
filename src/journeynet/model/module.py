"""LightningModule that trains :class:`~journeynet.model.net.AttentionLSTM` on conversion.

The network and a partially applied optimizer (and scheduler) come in from Hydra, as in
lightning-hydra-template. The net's constructor arguments are saved as the hparam
``net_kwargs`` so :meth:`JourneyModule.load` can rebuild a checkpoint on its own.

Quickstart
----------
>>> from functools import partial
>>> import torch
>>> from journeynet.model.net import AttentionLSTM
>>> from journeynet.model.module import JourneyModule
>>> module = JourneyModule(AttentionLSTM(6, 4, hidden_size=8), partial(torch.optim.AdamW, lr=1e-3))
>>> module.hparams.net_kwargs["hidden_size"]
8
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    BinaryAUROC,
    BinaryAveragePrecision,
    BinaryCalibrationError,
)

from journeynet.model.net import AttentionLSTM

log = logging.getLogger(__name__)

Batch = dict[str, Tensor]


def _describe(factory: Callable[..., Any] | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Hydra-style ``{_target_, _partial_, **kwargs}`` of a partial, with builtins only.

    Checkpoints then load with ``torch.load(weights_only=True)``, which refuses pickled
    ``functools.partial`` objects (so ``trainer.fit(ckpt_path=...)`` would fail).
    """
    if factory is None or isinstance(factory, Mapping):
        return None if factory is None else dict(factory)
    func = getattr(factory, "func", factory)
    if getattr(factory, "args", ()):
        raise ValueError(f"optimizer/scheduler partials take keywords only, got args {factory.args}")
    kwargs = getattr(factory, "keywords", {})
    kwargs = {k: OmegaConf.to_container(v) if OmegaConf.is_config(v) else v
              for k, v in kwargs.items()}
    return {"_target_": f"{func.__module__}.{func.__qualname__}", "_partial_": True, **kwargs}


def _stage_metrics(stage: str) -> MetricCollection:
    return MetricCollection(
        {"auroc": BinaryAUROC(), "ap": BinaryAveragePrecision(), "ece": BinaryCalibrationError()},
        prefix=f"{stage}/",
    )


class JourneyModule(pl.LightningModule):
    """Binary cross-entropy training with per-stage torchmetrics.

    Parameters
    ----------
    net : nn.Module
        The network; ``net(channel, campaign, feats, lengths)`` returns ``logits``.
        If it has a ``config`` dict (as :class:`AttentionLSTM` does), it is saved as
        the hparam ``net_kwargs``.
    optimizer : Callable[..., torch.optim.Optimizer] | Mapping[str, Any]
        Partial optimizer, called with ``params=``; or its Hydra description
        ``{_target_, _partial_: true, **kwargs}`` (the form saved in checkpoints).
    scheduler : Callable[..., Any] | Mapping[str, Any] | None
        Partial LR scheduler (or description), called with ``optimizer=``.
        ReduceLROnPlateau is stepped on ``val/loss``.
    pos_weight : float | None
        Weight of positive examples in the loss (e.g. ``(1 - rate) / rate``).
    compile : bool
        ``torch.compile`` the net at fit start.

    Notes
    -----
    Logged per epoch: ``{stage}/loss`` (weighted training objective), ``{stage}/logloss``
    (unweighted BCE), ``{stage}/auroc``, ``{stage}/ap``, ``{stage}/ece`` for stages
    ``train``, ``val``, ``test``. After ``trainer.test`` the attribute
    :attr:`test_predictions` holds ``index``, ``p`` and ``label`` numpy arrays of this
    process (under DDP each rank holds its share).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer] | Mapping[str, Any],
        scheduler: Callable[..., Any] | Mapping[str, Any] | None = None,
        pos_weight: float | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if pos_weight is not None and pos_weight <= 0:
            raise ValueError(f"pos_weight must be > 0 or None, got {pos_weight}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        # Plain descriptions, not pickled partials, so checkpoints load with weights_only=True.
        self.hparams["optimizer"] = _describe(optimizer)
        self.hparams["scheduler"] = _describe(scheduler)
        self.hparams["net_kwargs"] = dict(getattr(net, "config", {}))
        self._optimizer = instantiate(optimizer) if isinstance(optimizer, Mapping) else optimizer
        self._scheduler = instantiate(scheduler) if isinstance(scheduler, Mapping) else scheduler
        self.net = net
        pw = torch.tensor([] if pos_weight is None else [float(pos_weight)])
        self.register_buffer("pos_weight", pw, persistent=False)
        # ModuleDict keys cannot shadow nn.Module attributes such as `train`, hence `_m`.
        stages = ("train", "val", "test")
        self.metrics = nn.ModuleDict({f"{s}_m": _stage_metrics(s) for s in stages})
        self.logloss = nn.ModuleDict({f"{s}_m": MeanMetric() for s in stages})
        self.loss_mean = nn.ModuleDict({f"{s}_m": MeanMetric() for s in stages})
        self.test_predictions: dict[str, np.ndarray] = {}
        self._test_parts: list[tuple[Tensor, Tensor, Tensor]] = []

    def forward(self, batch: Batch) -> dict[str, Tensor]:
        """Run the net on a collated batch; returns ``logits`` (B,) and ``attention`` (B, T)."""
        extra = {k: batch[k] for k in ("history", "calendar") if k in batch}
        return self.net(batch["channel"], batch["campaign"], batch["feats"], batch["lengths"],
                        batch.get("full_length"), **extra)

    def model_step(self, batch: Batch, stage: str) -> tuple[Tensor, Tensor]:
        """Shared train/val/test step: loss and metric updates (logged once per epoch).

        Each ``self.log`` call costs Lightning about 2 ms; five per step cost the loop a
        third of its speed, so steps only update torchmetrics and the epoch-end hooks log.

        Returns
        -------
        tuple[Tensor, Tensor]
            Loss (scalar) and probabilities (B,).
        """
        logits = self(batch)["logits"].float()  # (B,), float32 even under bf16 autocast
        y = batch["label"].float()  # (B,)
        pw = self.pos_weight if self.pos_weight.numel() else None
        loss = F.binary_cross_entropy_with_logits(logits, y, pos_weight=pw)
        with torch.no_grad():
            p = torch.sigmoid(logits)  # (B,)
            plain = F.binary_cross_entropy_with_logits(logits, y, reduction="none")  # (B,)
            self.logloss[f"{stage}_m"].update(plain)
            self.metrics[f"{stage}_m"].update(p, y.long())
            self.loss_mean[f"{stage}_m"].update(loss.detach(), weight=len(y))
        return loss, p

    def _log_epoch(self, stage: str) -> None:
        """Log the epoch's ``{stage}/...`` values (torchmetrics syncs them across ranks) and reset."""
        m = f"{stage}_m"
        if self.loss_mean[m].update_count == 0:
            return
        out = {f"{stage}/loss": self.loss_mean[m].compute(), f"{stage}/logloss": self.logloss[m].compute(),
               **self.metrics[m].compute()}
        self.log_dict(out, prog_bar=stage == "val")
        for metric in (self.loss_mean[m], self.logloss[m], self.metrics[m]):
            metric.reset()

    def on_train_epoch_end(self) -> None:
        """Log the training epoch."""
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        """Log the validation epoch (before checkpointing and early stopping read it)."""
        self._log_epoch("val")

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Train on one batch."""
        return self.model_step(batch, "train")[0]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate validation metrics."""
        self.model_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Accumulate test metrics and keep predictions for :attr:`test_predictions`."""
        _, p = self.model_step(batch, "test")
        self._test_parts.append((batch["index"].cpu(), p.detach().cpu(), batch["label"].cpu()))

    def on_test_epoch_start(self) -> None:
        """Forget predictions of an earlier test run."""
        self._test_parts = []

    def on_test_epoch_end(self) -> None:
        """Log the test metrics; stash this process's test predictions in journey-index order."""
        self._log_epoch("test")
        if not self._test_parts:
            return
        idx, p, y = (torch.cat(t).numpy() for t in zip(*self._test_parts, strict=True))
        order = np.argsort(idx, kind="stable")
        self.test_predictions = {"index": idx[order], "p": p[order], "label": y[order]}
        self._test_parts = []

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        """Return ``index``, ``p`` (B,) and ``attention`` (B, T) for a batch."""
        out = self(batch)
        return {"index": batch["index"], "p": torch.sigmoid(out["logits"].float()),
                "attention": out["attention"]}

    def setup(self, stage: str) -> None:
        """Compile the net for fitting when asked."""
        if self.hparams.compile and stage == "fit":
            self.net = torch.compile(self.net)

    def configure_optimizers(self) -> dict[str, Any]:
        """Build the optimizer (and scheduler) from the partials given at construction."""
        optimizer = self._optimizer(params=self.trainer.model.parameters())
        if self._scheduler is None:
            return {"optimizer": optimizer}
        keywords = getattr(self._scheduler, "keywords", {})
        func = getattr(self._scheduler, "func", self._scheduler)
        if func is torch.optim.lr_scheduler.CosineAnnealingLR and keywords.get("T_max") is None:
            # Per batch over the run's real length: max_epochs, or fewer when trainer.max_steps
            # ends training first (large data), so the rate still anneals before the end.
            steps = max(1, int(self.trainer.estimated_stepping_batches))
            return {"optimizer": optimizer,
                    "lr_scheduler": {"scheduler": self._scheduler(optimizer=optimizer, T_max=steps),
                                     "interval": "step", "frequency": 1}}
        scheduler = self._scheduler(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss",
                             "interval": "epoch", "frequency": 1},
        }

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> JourneyModule:
        """Rebuild a module and its :class:`AttentionLSTM` from a checkpoint alone.

        Parameters
        ----------
        path : str | Path
            Lightning checkpoint written by a ``JourneyModule``.
        map_location : str | torch.device
            Where to put the weights.

        Returns
        -------
        JourneyModule
            The module in eval mode.
        """
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        net_kwargs = ckpt.get("hyper_parameters", {}).get("net_kwargs")
        if not net_kwargs:
            raise ValueError(f"checkpoint {path} has no hparam 'net_kwargs'; cannot rebuild the net")
        module = cls.load_from_checkpoint(
            path, map_location=map_location, net=AttentionLSTM(**net_kwargs), weights_only=True
        )
        # load_from_checkpoint drops hparams that are not __init__ arguments; keep net_kwargs.
        module.hparams["net_kwargs"] = dict(net_kwargs)
        return module.eval()
