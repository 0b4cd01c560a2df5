"""Length-bucketed batches of journeys for Lightning.

Everything stays in numpy arrays: a batch is a vector of journey indices, and
:func:`collate_journeys` gathers their touches into padded tensors in one vectorized
step (no per-row Python objects).

Distributed training: the batch sampler is a plain ``Sampler`` with ``__len__`` whose
items are index arrays, loaded with ``batch_size=None``. Under DDP, Lightning's
``use_distributed_sampler=True`` (the default, kept by ``conf/trainer/ddp.yaml``) wraps
it in ``DistributedSamplerWrapper``, which deals whole batches out to the ranks and
pads so every rank runs the same number of steps. The sampler is deterministic given
``(seed, epoch)``, so every rank builds the same batch list before it is split.

Quickstart
----------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> from journeynet.model.datamodule import JourneyDataModule
>>> n = np.array([2, 1, 3])
>>> j = SimpleNamespace(offsets=np.r_[0, np.cumsum(n)], channel=np.arange(2, 8),
...     campaign=np.ones(6, np.int64), log_dt_prev=np.zeros(6, np.float32),
...     log_dt_end=np.zeros(6, np.float32), position=np.r_[0, 1, 0, 0, 1, 2],
...     time=np.arange(6) * 10**12, label=np.array([1, 0, 1], np.int8))
>>> dm = JourneyDataModule(j, {"train": np.arange(3), "val": np.arange(3)}, batch_size=2)
>>> batch = next(iter(dm.val_dataloader()))
>>> batch["channel"].shape, batch["feats"].shape
(torch.Size([2, 2]), torch.Size([2, 2, 10]))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from journeynet.data.calendar import attached_calendar
from journeynet.data.history import journey_history
from journeynet.model.features import collate_journeys, journey_lengths, touch_features

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test", "predict")
__all__ = [
    "JourneyDataModule", "LengthBucketSampler", "collate_journeys", "journey_lengths",
    "touch_features",
]


class LengthBucketSampler(Sampler[np.ndarray]):
    """Yield arrays of journey indices, grouped by similar length.

    Training order with ``bucket=True``: shuffle, cut into chunks of
    ``chunk_batches * batch_size``, sort each chunk by length, cut into batches, shuffle
    the batches. Padding waste stays small while batch composition still changes every
    epoch. With ``bucket="mixed"``: journeys up to the ``mix_quantile`` length are shuffled
    together, so a batch mixes lengths (conversion rates differ several-fold by length, and
    a batch of one length pulls the whole net towards that length's rate); only the rare
    longer journeys are batched among themselves, so a batch pads to at most the cap.
    Without shuffling, all indices are sorted by length once (deterministic evaluation order).

    Parameters
    ----------
    indices : np.ndarray
        Journey indices to draw from.
    lengths : np.ndarray
        Lengths of those journeys, aligned with ``indices``.
    batch_size : int
        Journeys per batch.
    shuffle : bool
        Random order per epoch (training) or sorted by length (evaluation).
    bucket : bool or "mixed"
        Group by length (True); plain shuffled or sequential batches (False); or mix
        lengths up to the ``mix_quantile`` length within each batch ("mixed").
    seed : int
        Base seed; epoch ``e`` uses ``default_rng([seed, e])``.
    chunk_batches : int
        Batches per sorting chunk.
    mix_quantile : float
        Under ``bucket="mixed"``, journeys longer than this quantile of the lengths are
        batched by length instead of mixed in.
    """

    def __init__(
        self, indices: np.ndarray, lengths: np.ndarray, batch_size: int, shuffle: bool,
        bucket: bool | str = True, seed: int = 0, chunk_batches: int = 50, mix_quantile: float = 0.99,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if bucket not in (True, False, "mixed"):
            raise ValueError(f"bucket must be true, false or 'mixed', got {bucket!r}")
        if len(indices) != len(lengths):
            raise ValueError(f"indices and lengths differ in size: {len(indices)} vs {len(lengths)}")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.shuffle, self.bucket = batch_size, shuffle, bucket
        self.seed, self.chunk_batches = seed, chunk_batches
        #: Under "mixed", the longest journey length that is mixed into any batch.
        self.mix_cap = int(np.quantile(self.lengths, mix_quantile)) if len(self.lengths) else 0
        self._n_long = int((self.lengths > self.mix_cap).sum())
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch used for the next iteration (Lightning calls this)."""
        self.epoch = epoch

    def __len__(self) -> int:
        bs = self.batch_size
        if self.bucket == "mixed" and self.shuffle:  # short and long journeys are cut into batches apart
            return -(-(len(self.indices) - self._n_long) // bs) + -(-self._n_long // bs)
        return -(-len(self.indices) // bs)

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        # Advance so a wrapper that re-lists us each epoch (DistributedSamplerWrapper) still
        # gets a fresh order; set_epoch overrides this when Lightning calls it.
        self.epoch += 1
        n, bs = len(self.indices), self.batch_size
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        if self.bucket == "mixed" and self.shuffle:
            long = self.lengths[order] > self.mix_cap
            short, rest = order[~long], order[long]
            rest = rest[np.argsort(self.lengths[rest], kind="stable")]
            batches = [self.indices[part[i:i + bs]] for part in (short, rest) for i in range(0, len(part), bs)]
            return iter([batches[i] for i in rng.permutation(len(batches))])
        if self.bucket:
            chunk = bs * self.chunk_batches if self.shuffle else max(n, 1)
            keys = np.arange(n) // chunk  # chunk id of each slot in `order`
            order = order[np.lexsort((self.lengths[order], keys))]
        batches = [self.indices[order[i:i + bs]] for i in range(0, n, bs)]
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return iter(batches)


class _JourneyBatches(Dataset):
    """Map a vector of journey indices to one collated batch."""

    def __init__(self, journeys: Any) -> None:
        self.journeys = journeys
        self.feats = touch_features(journeys)
        self.lengths = journey_lengths(journeys)
        self.history = journey_history(journeys)  # (n_journeys, N_HISTORY), once for every batch
        self.calendar = attached_calendar(journeys)  # (n_journeys, N_CALENDAR)

    def __getitem__(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return collate_journeys(self.journeys, self.feats, idx, self.lengths, self.history, self.calendar)


class JourneyDataModule(pl.LightningDataModule):
    """Serve train/val/test/predict splits of one :class:`~journeynet.data.journeys.Journeys`.

    Parameters
    ----------
    journeys : Journeys
        All journeys; splits index into it.
    splits : dict[str, np.ndarray]
        Journey indices per stage, keys among ``train``, ``val``, ``test``, ``predict``.
    batch_size : int
        Journeys per batch.
    num_workers : int
        DataLoader worker processes.
    bucket : bool or "mixed"
        Batch journeys of similar length together (True), shuffle them plainly (False),
        or mix lengths in every training batch but batch the rare longest apart ("mixed").
    seed : int
        Seed of the training batch order.
    """

    def __init__(
        self, journeys: Any, splits: dict[str, np.ndarray], batch_size: int = 512,
        num_workers: int = 0, bucket: bool | str = True, seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["journeys", "splits"])
        unknown = set(splits) - set(STAGES)
        if unknown:
            raise ValueError(f"split names must be among {STAGES}, got {sorted(unknown)}")
        lengths = journey_lengths(journeys)
        if len(lengths) and lengths.min() < 1:
            raise ValueError(f"every journey needs >= 1 touch, got min length {lengths.min()}")
        self.journeys = journeys
        self.splits = {k: np.asarray(v, dtype=np.int64) for k, v in splits.items()}
        self.dataset = _JourneyBatches(journeys)

    @property
    def pos_rate(self) -> float:
        """Share of converting journeys in the training split (for ``pos_weight``)."""
        return float(np.asarray(self.journeys.label)[self.splits["train"]].mean())

    def _loader(self, stage: str) -> DataLoader:
        if stage not in self.splits:
            raise ValueError(f"no '{stage}' split; splits given: {sorted(self.splits)}")
        idx = self.splits[stage]
        sampler = LengthBucketSampler(
            idx, self.dataset.lengths[idx], self.hparams.batch_size, shuffle=stage == "train",
            bucket=self.hparams.bucket, seed=self.hparams.seed,
        )
        return DataLoader(
            self.dataset, sampler=sampler, batch_size=None,  # the sampler yields whole batches
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Return shuffled, length-bucketed training batches."""
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        """Return validation batches sorted by length."""
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        """Return test batches sorted by length (``batch['index']`` restores order)."""
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        """Return predict batches sorted by length (``batch['index']`` restores order)."""
        return self._loader("predict")
