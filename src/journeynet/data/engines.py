"""Build a journey store from touchpoint files: in this process, in a process pool, or on Dask.

Two stages, the shape of every map-shuffle-reduce engine:

1. *map* each input file (a Parquet file of a directory or glob, or the one CSV) to
   canonical rows with the ordinary loader (every check of :mod:`.inputs` runs on each
   file, and errors name it), tag each row with its origin and customer partition;
2. *shuffle* rows to their partition and *reduce* each partition with
   :func:`~journeynet.data.partition.partition_journeys` into one shard.

``engine="local"`` runs both stages here (``workers=1``) or in a pool of ``workers``
processes, spilling stage 1's output as Parquet per (partition, file) so that memory
holds one file or one partition at a time, never the whole input.
``engine="dask"`` hands the same two functions to :mod:`.dask_engine`.
The vocabulary is fitted on the union of the files' distinct units (and the spend), so
it is the one a single ``Vocab.fit`` on everything would give.

Quickstart::

    from journeynet.data.engines import EngineSettings, build_journey_store
    build_journey_store({"touchpoints": "lake/touchpoints/", "lookback_days": 30, "max_len": 50},
                        "journeys/", settings=EngineSettings(partitions=16, workers=2))
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from journeynet.data import sources
from journeynet.data.inputs import join_single_campaign, load_touchpoints, resolve_path, touch_kwargs
from journeynet.data.journeys import Journeys, Vocab
from journeynet.data.partition import CANONICAL, ORIGIN, customer_partition, partition_journeys, unit_pairs
from journeynet.data.store import empty_journeys, shard_name, write_manifest, write_shard
from journeynet.errors import InputError

log = logging.getLogger(__name__)
ENGINES = ("local", "dask")


@dataclass(frozen=True)
class EngineSettings:
    """How journeys are built (``data.engine``, ``data.partitions``, ``data.workers``, ``data.scheduler``).

    Parameters
    ----------
    engine : {"local", "dask"}
        ``local``: this process or a process pool; ``dask``: a Dask cluster.
    partitions : int
        Customer partitions P; one shard each. The journeys do not depend on it.
    workers : int
        Processes (``local``) or LocalCluster workers (``dask`` without a scheduler).
    scheduler : str, optional
        Address of a running ``dask.distributed`` scheduler (``tcp://host:8786``).
    dask_processes : bool
        LocalCluster workers as processes (False: threads of this process, for small data).
    """

    engine: str = "local"
    partitions: int = 16
    workers: int = 1
    scheduler: str | None = None
    dask_processes: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"data.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.partitions < 1 or self.workers < 1:
            raise ValueError(f"data.partitions and data.workers must be >= 1, got {self.partitions}, {self.workers}")

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> EngineSettings:
        """Settings from a ``data`` config (missing keys take the defaults)."""
        return cls(engine=str(data.get("engine") or "local"), partitions=int(data.get("partitions") or 16),
                   workers=int(data.get("workers") or 1), scheduler=data.get("scheduler") or None)


def input_files(data: Mapping[str, Any]) -> list[str]:
    """The files stage 1 maps over: the Parquet files of a directory or glob, or the one file."""
    path = data.get("touchpoints")
    if not path:
        raise InputError("data.touchpoints is not set: pass data.touchpoints=PATH")
    p = resolve_path(path)
    if not sources.is_dataset_path(p):
        return [str(p)]
    return sources.dataset_files(p, "touchpoints")[0]


def load_file(data: Mapping[str, Any], file: str) -> pd.DataFrame:
    """One input file's canonical rows, read and checked by :func:`load_touchpoints` (errors name ``file``).

    Rows outside ``data.start`` / ``data.end`` are dropped; a file with no row in the range
    gives an empty frame.
    """
    kw = touch_kwargs(data)
    path = resolve_path(data["touchpoints"])
    try:
        with sources.only_files([file]):
            return load_touchpoints(path, require_conversions=False, **kw)
    except InputError as exc:
        if "no rows" in str(exc) and (data.get("start") or data.get("end")):
            return pd.DataFrame({c: [] for c in CANONICAL})
        # the loader names the directory; the file is the more useful name
        raise InputError(str(exc).replace(f"file {path}:", f"file {file}:", 1)) from exc


def canonical_chunk(data: Mapping[str, Any], index: int, file: str, spend: pd.DataFrame | None,
                    n_partitions: int) -> pd.DataFrame:
    """Stage 1 for one file: canonical rows (:func:`load_file`), their origin (``_file``, ``_row``) and ``_part``."""
    frame = load_file(data, file)
    if len(frame) == 0:
        return pd.DataFrame({c: [] for c in [*CANONICAL, *ORIGIN, "_part"]})
    if spend is not None:
        frame = join_single_campaign(frame, spend)
    return frame.assign(_file=np.int32(index), _row=np.arange(len(frame), dtype=np.int64),
                        _part=customer_partition(frame["customer_id"], n_partitions).astype(np.int32))


def spill_chunk(frame: pd.DataFrame, spill: str, index: int) -> dict[str, Any]:
    """Write a stage-1 chunk's rows under ``spill/p-<partition>/c-<file>.parquet``; return its summary."""
    part = frame["_part"].to_numpy()
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(part.max() + 2)) if len(part) else np.zeros(1, np.int64)
    table = pa.Table.from_pandas(frame.drop(columns="_part"), preserve_index=False).take(order)
    for p in np.flatnonzero(np.diff(bounds)):
        d = Path(spill) / f"p-{int(p):05d}"
        d.mkdir(parents=True, exist_ok=True)
        # local scratch read back once: no compression, small pages are not worth the time
        pq.write_table(table.slice(bounds[p], bounds[p + 1] - bounds[p]), d / f"c-{index:05d}.parquet",
                       compression="none")
    return {"units": unit_pairs(frame), "rows": len(frame), "conversions": int(frame["converted"].sum())}


def _map_file(data: Mapping[str, Any], index: int, file: str, spend: pd.DataFrame | None, n_partitions: int,
              spill: str) -> dict[str, Any]:
    return spill_chunk(canonical_chunk(data, index, file, spend, n_partitions), spill, index)


def reduce_partition(rows: pd.DataFrame | None, vocab: Vocab, lookback_days: float, max_len: int) -> Journeys:
    """Stage 2 for one partition: its journeys (empty when no customer hashed there)."""
    if rows is None or len(rows) == 0:
        return empty_journeys(vocab)
    return partition_journeys(rows, vocab, lookback_days=lookback_days, max_len=max_len)


def _reduce_spilled(spill: str, part: int, vocab: Vocab, lookback_days: float, max_len: int,
                    out_dir: str) -> dict[str, Any]:
    d = Path(spill) / f"p-{part:05d}"
    files = sorted(d.glob("c-*.parquet")) if d.is_dir() else []
    rows = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True) if files else None
    return write_shard(reduce_partition(rows, vocab, lookback_days, max_len), Path(out_dir) / shard_name(part))


def fit_vocab(summaries: list[dict[str, Any]], spend: pd.DataFrame | None, where: str) -> Vocab:
    """The vocabulary of every file's units and the spend; raises when nothing converts."""
    if not sum(s["conversions"] for s in summaries):
        raise InputError(f"touchpoints under {where}: no row marks a conversion")
    units = pd.concat([s["units"] for s in summaries], ignore_index=True).drop_duplicates()
    return Vocab.fit(units, spend)


def settings_record(data: Mapping[str, Any], settings: EngineSettings) -> dict[str, Any]:
    """What the manifest records about how the journeys were cut."""
    return {"lookback_days": float(data.get("lookback_days", 30)), "max_len": int(data.get("max_len", 50)),
            "engine": settings.engine, "source": str(data.get("touchpoints"))}


def build_journey_store(data: Mapping[str, Any], out_dir: str | Path, spend: pd.DataFrame | None = None,
                        settings: EngineSettings | None = None) -> dict[str, Any]:
    """Build the journey store of ``data.touchpoints`` into ``out_dir``.

    Parameters
    ----------
    data : mapping
        The ``data`` config (touchpoints, columns, conversion, maps, start, end, lookback_days, max_len).
    out_dir : str or Path
        The store directory (created; existing shards are replaced).
    spend : pd.DataFrame, optional
        Canonical spend: its units join the vocabulary, as ``Vocab.fit`` does.
    settings : EngineSettings, optional
        Engine, partitions and workers (default: this process, 16 partitions).

    Returns
    -------
    dict
        Totals: journeys, touches, rows read, partitions.
    """
    settings = settings or EngineSettings.from_data(data)
    if settings.engine == "dask":
        from journeynet.data.dask_engine import build_journey_store_dask

        return build_journey_store_dask(data, out_dir, spend, settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = input_files(data)
    lookback, max_len, n_parts = float(data.get("lookback_days", 30)), int(data.get("max_len", 50)), settings.partitions
    spill = tempfile.mkdtemp(prefix=".spill-", dir=out)
    pool = ProcessPoolExecutor(settings.workers, mp_context=get_context("spawn")) if settings.workers > 1 else None
    run = pool.map if pool else map
    try:
        n = len(files)
        summaries = list(run(_map_file, [data] * n, range(n), files, [spend] * n, [n_parts] * n, [spill] * n))
        vocab = fit_vocab(summaries, spend, str(data["touchpoints"]))
        shards = list(run(_reduce_spilled, [spill] * n_parts, range(n_parts), [vocab] * n_parts,
                          [lookback] * n_parts, [max_len] * n_parts, [str(out)] * n_parts))
    finally:
        if pool:
            pool.shutdown()
        shutil.rmtree(spill, ignore_errors=True)
    write_manifest(out, vocab, shards, settings_record(data, settings))
    rows = sum(s["rows"] for s in summaries)
    log.info("journey store %s: %d journeys of %d rows from %d files in %d partitions", out,
             sum(s["journeys"] for s in shards), rows, len(files), n_parts)
    return {"journeys": sum(s["journeys"] for s in shards), "touches": sum(s["touches"] for s in shards),
            "rows": rows, "files": len(files), "partitions": n_parts}


def build_store_from_frame(touchpoints: pd.DataFrame, out_dir: str | Path, spend: pd.DataFrame | None = None,
                           lookback_days: float = 30, max_len: int = 50, n_partitions: int = 16) -> dict[str, Any]:
    """The journey store of a canonical frame already in memory (generated data, a small file).

    The shards are those :func:`build_journey_store` writes from the same rows.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = Vocab.fit(unit_pairs(touchpoints), spend)
    part = customer_partition(touchpoints["customer_id"], n_partitions)
    frame = touchpoints.assign(_file=np.int32(0), _row=np.arange(len(touchpoints), dtype=np.int64))
    groups = dict(iter(frame.groupby(part, sort=True)))
    shards = [write_shard(reduce_partition(groups.get(p), vocab, lookback_days, max_len), out / shard_name(p))
              for p in range(n_partitions)]
    record = {"lookback_days": float(lookback_days), "max_len": int(max_len), "engine": "local", "source": "frame"}
    write_manifest(out, vocab, shards, record)
    return {"journeys": sum(s["journeys"] for s in shards), "touches": sum(s["touches"] for s in shards),
            "rows": len(touchpoints), "files": 0, "partitions": n_partitions}
