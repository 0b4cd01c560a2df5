"""Each rank trains on the journey shards dealt to it; no rank holds every journey.

The shards of a journey store (:mod:`journeynet.data.store`) are dealt to ranks by a
deterministic greedy balance on their journey counts (from the manifest, so every
rank computes the same deal without talking to the others). Train, val and test are
split by customer hash (:func:`journeynet.data.partition.hash_split`): a customer's
split does not depend on the number of ranks, so the union over ranks of each split is
the split one process computes on the whole store.

Under DDP every rank must run the same number of optimizer steps, or the gradient
all-reduce waits forever. Each epoch, every rank pads its training batches to the
largest rank's count by repeating its own batches (as Lightning's distributed sampler
pads with repeated samples); the counts come from an all-reduce of every rank's own.
Evaluation batches are not padded: each rank scores its own journeys once, and the
metrics are synced at the end of the epoch.

With Lightning, pass ``use_distributed_sampler=False`` (the data is already dealt).

``train.py`` uses this module when ``data.journeys`` (or ``data.engine``/``data.workers``)
gives a journey store and the trainer starts more than one process (a ``ddp`` strategy
with ``trainer.devices x trainer.num_nodes > 1``): see :func:`shards_per_rank` and
:class:`StoreForRun`. Only the training is sharded: after ``fit``, rank 0 reads the whole
store to score the test split and run the attribution, which need every journey. Rank 0
alone loads the inputs; the ranks Lightning starts at ``fit`` take the vocabulary from the
store and load nothing but their shards (:func:`store_for_launched_rank`).

Quickstart::

    dm = ShardedJourneyDataModule("journeys/", val_fraction=0.1, test_fraction=0.2)
    trainer = pl.Trainer(strategy="ddp", devices=2, use_distributed_sampler=False)
    trainer.fit(module, datamodule=dm)  # rank r loads the shards of deal_shards(...)[r]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from journeynet.data.calendar import calendar_window, with_calendar
from journeynet.data.history import with_history
from journeynet.data.partition import hash_split
from journeynet.data.store import read_manifest, read_store, store_window
from journeynet.model.datamodule import JourneyDataModule, LengthBucketSampler
from journeynet.preflight import SettingError

log = logging.getLogger(__name__)


def deal_shards(shards: Sequence[Mapping[str, Any]], world_size: int) -> list[list[int]]:
    """Shard indices per rank: largest shard first to the rank with the fewest journeys so far.

    Ties go to the lower rank and the lower shard index, so every rank computes the same deal.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    load = np.zeros(world_size, dtype=np.int64)
    dealt: list[list[int]] = [[] for _ in range(world_size)]
    sizes = np.array([int(s["journeys"]) for s in shards], dtype=np.int64)
    for i in np.lexsort((np.arange(len(sizes)), -sizes)):
        r = int(np.argmin(load))
        dealt[r].append(int(i))
        load[r] += sizes[i]
    return [sorted(d) for d in dealt]


def placed_in_store(journeys: Any, manifest: Mapping[str, Any], whole: bool) -> Any:
    """``journeys`` (some or all of a store's) with their calendar against the whole store's window.

    The window and the data's end come from the manifest (:func:`~journeynet.data.store.store_window`),
    so a rank's shards get the values one process computes on the whole store. A store
    written before shard entries recorded their touches falls back to the span of what
    was read (exact when ``whole``).
    """
    window = store_window(manifest)
    if window is None:
        if not whole:
            log.warning("the journey store's manifest has no first/last touch per shard (written by an older "
                        "version): model.calendar places this rank's journeys against its own shards' span")
        return with_calendar(journeys)
    return with_calendar(journeys, window, data_end=window[1])


def rank_and_world(trainer: Any = None) -> tuple[int, int]:
    """Rank of this process and the world size: the trainer's, else torch.distributed's, else (0, 1)."""
    if trainer is not None and getattr(trainer, "world_size", None):
        return int(trainer.global_rank), int(trainer.world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def global_max(value: int) -> int:
    """The largest ``value`` over ranks (``value`` itself outside a process group)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return value
    t = torch.tensor([value], dtype=torch.int64)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return int(t.item())


class PaddedSampler(Sampler[np.ndarray]):
    """The batches of ``inner``, then repeats of them until there are ``n_batches`` in the epoch."""

    def __init__(self, inner: LengthBucketSampler, n_batches: int) -> None:
        if n_batches < len(inner):
            raise ValueError(f"n_batches ({n_batches}) must be >= the sampler's {len(inner)} batches")
        self.inner, self.n_batches = inner, n_batches

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the inner sampler (a fresh order every epoch)."""
        self.inner.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[np.ndarray]:
        batches = list(self.inner)
        if not batches:
            raise ValueError("this rank has no training journeys; use fewer ranks or more partitions")
        return iter([batches[i % len(batches)] for i in range(self.n_batches)])


class ShardedJourneyDataModule(pl.LightningDataModule):
    """Serve one rank's shards of a journey store, split by customer hash.

    Parameters
    ----------
    store : str or Path
        A journey store directory (``data.journeys``).
    val_fraction, test_fraction : float
        Expected shares of customers in val and test.
    batch_size : int
        Journeys per batch.
    num_workers : int
        DataLoader worker processes.
    seed : int
        Seed of the customer split and of the batch order.
    rank, world_size : int, optional
        Set them outside Lightning; under a Trainer they come from it at ``setup``.
    bucket : bool or "mixed"
        Training batch composition, as :class:`~journeynet.model.datamodule.JourneyDataModule`'s.
    split_group : str, optional
        ``data.split_group``: split by the user part of the id (see :func:`hash_split`).
    """

    def __init__(self, store: str | Path, val_fraction: float = 0.1, test_fraction: float = 0.2,
                 batch_size: int = 512, num_workers: int = 0, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None, bucket: bool | str = True, split_group: str | None = None) -> None:
        super().__init__()
        store = str(store)  # saved in checkpoints: a Path there fails torch.load(weights_only=True)
        self.save_hyperparameters(ignore=["rank", "world_size"])
        self.manifest = read_manifest(store)
        self.rank, self.world_size = rank, world_size
        self.inner: JourneyDataModule | None = None
        self.shards: list[int] = []

    def setup(self, stage: str | None = None) -> None:
        """Load this rank's shards (once) and split them by customer hash."""
        if self.inner is not None:
            return
        if self.rank is None or self.world_size is None:
            self.rank, self.world_size = rank_and_world(getattr(self, "trainer", None))
        hp = self.hparams
        self.shards = deal_shards(self.manifest["shards"], self.world_size)[self.rank]
        self.vocab, journeys = read_store(hp.store, self.shards)
        journeys = with_history(journeys)  # shards keep each customer_id whole
        journeys = placed_in_store(journeys, self.manifest, whole=False)
        splits = hash_split(journeys, hp.val_fraction, hp.test_fraction, seed=hp.seed, group_pattern=hp.split_group)
        self.inner = JourneyDataModule(journeys, splits, batch_size=hp.batch_size, num_workers=hp.num_workers,
                                       bucket=hp.bucket, seed=hp.seed)
        log.info("rank %d of %d: shards %s, %d journeys (%d train, %d val, %d test)", self.rank, self.world_size,
                 self.shards, len(journeys), len(splits["train"]), len(splits["val"]), len(splits["test"]))

    @property
    def journeys(self) -> Any:
        """Journeys of this rank."""
        self.setup()
        return self.inner.journeys

    @property
    def splits(self) -> dict[str, np.ndarray]:
        """Split indices into :attr:`journeys`."""
        self.setup()
        return self.inner.splits

    @property
    def pos_rate(self) -> float:
        """Share of converting journeys in this rank's training split."""
        self.setup()
        return self.inner.pos_rate

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches of this rank, padded to the largest rank's count."""
        self.setup()
        idx = self.inner.splits["train"]
        hp = self.hparams
        inner = LengthBucketSampler(idx, self.inner.dataset.lengths[idx], hp.batch_size, shuffle=True,
                                    bucket=hp.bucket, seed=hp.seed * 7919 + self.rank)
        sampler = PaddedSampler(inner, global_max(len(inner)))
        return DataLoader(self.inner.dataset, sampler=sampler, batch_size=None, num_workers=hp.num_workers,
                          persistent_workers=hp.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        """Validation batches of this rank (its own journeys once)."""
        self.setup()
        return self.inner.val_dataloader()

    def test_dataloader(self) -> DataLoader:
        """Test batches of this rank (its own journeys once)."""
        self.setup()
        return self.inner.test_dataloader()


def trainer_processes(trainer_cfg: Mapping[str, Any]) -> int:
    """Processes a trainer config starts: ``devices x num_nodes`` under a DDP strategy, else 1.

    Read from the config, before the trainer exists, because ``use_distributed_sampler``
    has to be given to the trainer's constructor. ``strategy=auto`` (or none) counts as
    DDP: Lightning picks ``ddp`` for more than one device. ``devices=auto`` (or -1) counts
    the visible CUDA devices on a GPU accelerator and one device on CPU, as Lightning does.
    Other strategies (fsdp, deepspeed, ...) count as one: their runs are not sharded here.
    """
    strategy = trainer_cfg.get("strategy") or "auto"
    name = str(strategy.get("_target_", "")) if isinstance(strategy, Mapping) else str(strategy)
    if "ddp" not in name.lower() and name != "auto":
        return 1
    return _device_count(trainer_cfg.get("devices", "auto"), str(trainer_cfg.get("accelerator", "auto"))) * int(
        trainer_cfg.get("num_nodes", 1) or 1)


def _device_count(devices: Any, accelerator: str) -> int:
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        return len(devices)
    text = str(devices).strip().lower()
    if "," in text:  # Lightning reads "0,1" (and "1,") as a list of device ids
        return len([d for d in text.split(",") if d.strip()])
    if text in ("auto", "-1"):
        gpu = accelerator.lower() in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        return torch.cuda.device_count() if gpu else 1
    return int(text)


def uses_store(cfg: Any) -> bool:
    """Whether ``train.py`` reads its journeys from a journey store (``data.journeys``, or an engine building one)."""
    from journeynet.data.engines import EngineSettings

    settings = EngineSettings.from_data(cfg.data)
    return bool(cfg.data.get("journeys")) or settings.engine != "local" or settings.workers != 1


def shards_per_rank(cfg: Any) -> bool:
    """Whether each training process should load only its own shards of the journey store.

    True for a run that reads a journey store under a trainer of more than one process.
    Such a run needs ``data.split=customer``: a rank can split its own customers by hash
    without seeing the others', and the split is the one a single process computes.

    Raises
    ------
    SettingError
        ``data.split`` is not ``customer`` for such a run.
    """
    trainer = cfg.get("trainer") or {}
    n = trainer_processes(trainer)
    if n <= 1 or not uses_store(cfg):
        return False
    if cfg.data.split != "customer":
        raise SettingError(
            f"data.split={cfg.data.split}: with a journey store (data.journeys) and {n} training processes "
            f"(strategy {trainer.get('strategy') or 'auto'}, trainer.devices x trainer.num_nodes = {n}) each rank "
            "trains on its own shards, split by customer hash; use data.split=customer, or train on one process "
            "(trainer.devices=1)")
    return True


def launched_rank(trainer_cfg: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> int:
    """Global rank a DDP launcher started this process as, read from the environment; 0 when none did.

    Known before the trainer exists. Lightning's ``ddp`` launcher (``subprocess_script``) runs
    ``train.py`` again for each local rank >= 1 when ``fit`` starts, with ``LOCAL_RANK``,
    ``NODE_RANK`` and ``WORLD_SIZE`` set (rank 0 has none of them before ``fit``); the global
    rank is then ``NODE_RANK x devices per node + LOCAL_RANK``, as Lightning computes it
    (``GROUP_RANK`` stands in for ``NODE_RANK``, as in Lightning). ``torchrun`` also sets
    ``RANK``, the global rank, which is taken as is. Without both ``LOCAL_RANK`` and
    ``WORLD_SIZE`` the process counts as rank 0: a plain run, rank 0 before ``fit``, a node's
    first process under a multi-node Lightning launch, ``srun`` (SLURM's own variables). Counting
    a process as rank 0 only costs memory (it loads the inputs); the trainer knows the real rank.

    Parameters
    ----------
    trainer_cfg : Mapping
        The ``trainer`` config; its ``devices`` (and ``accelerator``) give the devices per node.
    environ : Mapping, optional
        The environment to read; ``os.environ`` by default.
    """
    env = os.environ if environ is None else environ
    if "LOCAL_RANK" not in env or "WORLD_SIZE" not in env:
        return 0
    if env.get("RANK"):
        return int(env["RANK"])
    node = int(env.get("NODE_RANK") or env.get("GROUP_RANK") or 0)
    per_node = _device_count(trainer_cfg.get("devices", "auto"), str(trainer_cfg.get("accelerator", "auto")))
    return node * per_node + int(env["LOCAL_RANK"])


def store_dir(cfg: Any) -> Path:
    """The journey store of a run: ``data.journeys``, else ``journeys/`` in the run directory."""
    return Path(cfg.data.get("journeys") or Path(cfg.paths.output_dir) / "journeys")


def store_for_launched_rank(cfg: Any) -> tuple[Any, StoreForRun, dict[str, np.ndarray]] | None:
    """What a DDP rank >= 1 trains on without loading the inputs; None on every other process.

    On a rank >= 1 (:func:`launched_rank`) of a run that trains per-rank shards
    (:func:`shards_per_rank`) on a store that exists, the vocabulary comes from the store and
    the journeys are a :class:`StoreForRun` that holds no frame and will not be read whole:
    this rank loads only its own shards at ``fit``. Rank 0 loaded and validated the inputs and
    built the store before ``fit`` started this process, so a bad input file stopped the run
    there. Elsewhere (rank 0, one process, no store yet because the processes started
    together) the run loads its inputs as before: None.
    """
    from journeynet.data.journeys import Vocab
    from journeynet.data.store import MANIFEST, VOCAB

    rank = launched_rank(cfg.get("trainer") or {})
    if rank == 0 or not shards_per_rank(cfg):
        return None
    store = store_dir(cfg)
    if not (store / MANIFEST).is_file():
        return None
    check_store_settings(store, read_manifest(store), cfg.data)
    log.info("rank %d: trains on its shards of the store %s; the inputs are loaded by rank 0 only", rank, store)
    return Vocab.load(store / VOCAB), StoreForRun(store, evaluates=False), {}


def check_store_settings(store: Path, manifest: Mapping[str, Any], data_cfg: Any) -> None:
    """Raise InputError when the store was built with other journey settings than ``data`` asks."""
    from journeynet.errors import InputError

    for key in ("lookback_days", "max_len"):
        if float(manifest[key]) != float(data_cfg[key]):
            raise InputError(f"data.journeys: {store} was built with {key}={manifest[key]}, the config asks "
                             f"data.{key}={data_cfg[key]}; point data.journeys at a new directory to rebuild")


@dataclass
class StoreForRun:
    """A journey store that ``train_model`` reads shard by shard while training, whole afterwards.

    It stands in for the journeys ``journeys_for_run`` would otherwise read: every rank
    loads only its own shards into :meth:`datamodule`, and after ``fit`` rank 0 alone calls
    :meth:`read`, which loads the WHOLE store (and the held-out test file) for scoring the
    test split, the baselines and the attribution.

    What each rank holds: rank 0 has loaded the inputs (touchpoints, spend, the held-out
    test file) before ``fit``, as a one-process run does, and its own shards during ``fit``.
    A rank >= 1 started by Lightning's launcher holds only the store's vocabulary and its
    own shards (:func:`store_for_launched_rank`): no input frame, no generated world; its
    ``StoreForRun`` has ``evaluates=False`` and no test frame.

    Parameters
    ----------
    path : Path
        The store directory.
    test_touchpoints : pandas.DataFrame, optional
        ``data.test_touchpoints`` loaded (rank 0); its journeys become the test split.
    evaluates : bool
        Whether this process reads the whole store after ``fit`` (False on a rank >= 1).
    """

    path: Path
    test_touchpoints: Any = None
    evaluates: bool = True

    def test_fraction(self, cfg: Any) -> float:
        """Share of the store's customers in test: none when a held-out test file is the test split.

        Decided from the config (``data.test_touchpoints``), not from a loaded frame, so a rank
        that loads no file splits its customers as rank 0 does.
        """
        return 0.0 if cfg.data.get("test_touchpoints") else float(cfg.data.test_fraction)

    def window(self) -> list[int] | None:
        """The store's window (first and last touch, ns) from its manifest; None for an older store."""
        return store_window(read_manifest(self.path))

    def datamodule(self, cfg: Any) -> ShardedJourneyDataModule:
        """Serve the current rank's shards, split by customer hash exactly as :meth:`read` splits the whole store."""
        d = cfg.data
        return ShardedJourneyDataModule(self.path, d.val_fraction, self.test_fraction(cfg), batch_size=d.batch_size,
                                        num_workers=d.num_workers, seed=cfg.seed, bucket=d.get("bucket", True),
                                        split_group=d.get("split_group"))

    def read(self, cfg: Any, vocab: Any = None) -> tuple[Any, Any, dict[str, np.ndarray]]:
        """Vocabulary, all journeys and splits of the store (test file appended), as ``journeys_for_run`` gives.

        ``vocab``, when given, is returned instead of the store's: the run's own carries the
        paid flags ``data.paid_channels`` declared.
        """
        from journeynet.data.journeys import build_journeys, split_journeys
        from journeynet.data.partition import concat_journeys

        d = cfg.data
        if not self.evaluates:
            raise RuntimeError(f"{self.path}: a DDP rank other than 0 loads only its own shards; rank 0 alone "
                               "reads the whole store after fit")
        if bool(d.get("test_touchpoints")) != (self.test_touchpoints is not None):  # test_fraction reads the config
            raise ValueError(f"data.test_touchpoints={d.get('test_touchpoints')!r} but the held-out test frame was "
                             f"{'not ' if self.test_touchpoints is None else ''}given")
        store_vocab, journeys = read_store(self.path)
        journeys = placed_in_store(with_history(journeys), read_manifest(self.path), whole=True)
        vocab = store_vocab if vocab is None else vocab
        if d.split == "customer":
            splits = hash_split(journeys, d.val_fraction, self.test_fraction(cfg), seed=cfg.seed,
                                group_pattern=d.get("split_group"))
        else:
            splits = split_journeys(journeys, d.val_fraction, self.test_fraction(cfg), by=d.split, seed=cfg.seed)
        if self.test_touchpoints is not None:
            test = build_journeys(self.test_touchpoints, vocab, lookback_days=d.lookback_days, max_len=d.max_len)
            test = with_calendar(with_history(test), window=self.window() or calendar_window(journeys))
            n = len(journeys)
            splits["test"] = np.arange(n, n + len(test))
            journeys = concat_journeys([journeys, test])
        log.info("journeys from the store %s: %d journeys in %d shards", self.path, len(journeys),
                 len(read_manifest(self.path)["shards"]))
        return vocab, journeys, splits


def journeys_for_run(cfg: Any, inputs: Any) -> tuple[Any, Any, dict[str, np.ndarray]]:
    """Vocabulary, journeys and splits for ``train.py``: from a journey store when one is asked for.

    ``data.journeys=DIR`` reuses the store in ``DIR`` (built there first when ``DIR`` holds
    none); ``data.engine=dask`` or ``data.workers>1`` builds one under the run directory.
    Otherwise the journeys are built in memory from the loaded frame, as before. Store
    splits go by customer hash (``data.split=customer``) or by time.

    Under a trainer of more than one process (:func:`shards_per_rank`) the store is not
    read here: the journeys are a :class:`StoreForRun` and the splits are empty, and
    ``train_model`` trains each rank on its own shards and reads the store on rank 0 after.
    """
    from journeynet.data.engines import EngineSettings, build_journey_store, build_store_from_frame
    from journeynet.data.store import MANIFEST
    from journeynet.model.training import make_journeys

    d = cfg.data
    settings = EngineSettings.from_data(d)
    sharded = shards_per_rank(cfg)  # before any building: a bad data.split fails at once
    if not uses_store(cfg):
        return make_journeys(cfg, inputs.touchpoints, inputs.spend, inputs.test_touchpoints)
    store = store_dir(cfg)
    # Lightning's ddp launcher starts the other ranks at fit, so rank 0 has built the store by then;
    # processes started together (torchrun, srun) would all build it at once: build it beforehand there.
    if not (store / MANIFEST).is_file() and not d.get("touchpoints"):  # generated data: the frame is all there is
        build_store_from_frame(inputs.touchpoints, store, inputs.spend, d.lookback_days, d.max_len,
                               settings.partitions)
    elif not (store / MANIFEST).is_file():
        from omegaconf import OmegaConf

        build_journey_store(OmegaConf.to_container(d, resolve=True), store, inputs.spend, settings)
    manifest = read_manifest(store)
    check_store_settings(store, manifest, d)
    deferred = StoreForRun(store, inputs.test_touchpoints)
    if sharded:
        from journeynet.data.journeys import Vocab
        from journeynet.data.store import VOCAB

        log.info("journeys from the store %s: %d shards, dealt to %d training processes; rank 0 reads the "
                 "whole store after training", store, len(manifest["shards"]), trainer_processes(cfg.trainer))
        return Vocab.load(store / VOCAB), deferred, {}
    return deferred.read(cfg)
