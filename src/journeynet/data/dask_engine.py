"""The journey store built on Dask: files mapped, rows shuffled by customer hash, partitions reduced.

Stage 1 (:func:`~journeynet.data.engines.canonical_chunk`, one task per file) becomes a
``dask.dataframe`` through ``from_delayed``; it is shuffled on the customer-partition
column ``_part`` and :func:`_reduce_group` maps each Dask partition, splitting it by
``_part`` (a Dask partition may hold several customer partitions) and writing one shard
per customer partition with :func:`~journeynet.data.engines.reduce_partition`. The
shards are the ones the local engine writes, to the byte.

The cluster is a ``distributed.LocalCluster`` of ``workers`` processes unless
``data.scheduler`` names a running scheduler (Kubernetes, YARN, SLURM, ``dask
scheduler`` on a head node); every worker must see the input files and the output
directory at the same paths (a shared filesystem or object store).

Quickstart::

    from journeynet.data.engines import EngineSettings, build_journey_store
    build_journey_store({"touchpoints": "lake/touchpoints/"}, "journeys/",
                        settings=EngineSettings(engine="dask", partitions=64, scheduler="tcp://head:8786"))
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeynet.data.engines import (
    EngineSettings,
    canonical_chunk,
    fit_vocab,
    input_files,
    reduce_partition,
    settings_record,
)
from journeynet.data.journeys import Vocab
from journeynet.data.store import empty_journeys, shard_name, write_manifest, write_shard

log = logging.getLogger(__name__)

_SUMMARY = {"part": "int64", "file": "str", "journeys": "int64", "touches": "int64", "customers": "int64",
            "first_touch": "Int64", "last_touch": "Int64"}  # NA for an empty shard


def chunk_meta() -> pd.DataFrame:
    """The empty frame with stage 1's columns and dtypes (Dask's ``meta``)."""
    return pd.DataFrame({
        "customer_id": pd.Series([], dtype="str"), "timestamp": pd.Series([], dtype="datetime64[ns]"),
        "channel": pd.Series([], dtype="str"), "campaign_type": pd.Series([], dtype="str"),
        "converted": pd.Series([], dtype="int8"), "revenue": pd.Series([], dtype="float64"),
        "_file": pd.Series([], dtype="int32"), "_row": pd.Series([], dtype="int64"),
        "_part": pd.Series([], dtype="int32"),
    })


@contextmanager
def dask_client(settings: EngineSettings) -> Iterator[Any]:
    """A client of ``settings.scheduler``, or of a LocalCluster of ``settings.workers`` workers."""
    from distributed import Client, LocalCluster

    # the p2p shuffle logs every start and stop at WARNING; they are routine here
    logging.getLogger("distributed.shuffle._scheduler_plugin").setLevel(logging.ERROR)
    if settings.scheduler:
        with Client(settings.scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=settings.workers, threads_per_worker=1, processes=settings.dask_processes,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def _reduce_group(frame: pd.DataFrame, vocab: Vocab, lookback_days: float, max_len: int,
                  out_dir: str) -> pd.DataFrame:
    """Write the shard of every customer partition in one Dask partition; one summary row each."""
    rows = []
    for part, group in frame.groupby("_part", sort=True):
        entry = write_shard(reduce_partition(group.drop(columns="_part"), vocab, lookback_days, max_len),
                            Path(out_dir) / shard_name(int(part)))
        rows.append({"part": int(part), **entry})
    return pd.DataFrame(rows, columns=list(_SUMMARY)).astype(_SUMMARY)


def build_journey_store_dask(data: Mapping[str, Any], out_dir: str | Path, spend: pd.DataFrame | None,
                             settings: EngineSettings) -> dict[str, Any]:
    """:func:`~journeynet.data.engines.build_journey_store` on a Dask cluster (same arguments and result)."""
    import dask
    import dask.dataframe as dd

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = input_files(data)
    n_parts = settings.partitions
    lookback, max_len = float(data.get("lookback_days", 30)), int(data.get("max_len", 50))
    with dask_client(settings) as client:
        spend_ref = client.scatter(spend, broadcast=True) if spend is not None else None
        tasks = [dask.delayed(canonical_chunk)(dict(data), i, f, spend_ref, n_parts) for i, f in enumerate(files)]
        canon = dd.from_delayed(tasks, meta=chunk_meta(), verify_meta=False)
        # pass 1: the vocabulary needs every unit before any journey is encoded
        units, conversions, rows = dask.compute(canon[["channel", "campaign_type"]].drop_duplicates(),
                                                canon["converted"].sum(), canon.shape[0])
        vocab = fit_vocab([{"units": units, "conversions": int(conversions)}], spend, str(data["touchpoints"]))
        # pass 2: shuffle rows to their customer partition, reduce each partition to its shard
        shuffled = canon.shuffle("_part", npartitions=max(1, min(n_parts, len(files) * 4)))
        summary = shuffled.map_partitions(_reduce_group, vocab, lookback, max_len, str(out),
                                          meta=pd.DataFrame({k: pd.Series([], dtype=v) for k, v in _SUMMARY.items()}))
        written = summary.compute()
    shards = [{k: v if k == "file" else int(v) for k, v in r.items() if not pd.isna(v)}
              for r in written.drop(columns="part").to_dict("records")]
    for part in sorted(set(range(n_parts)) - set(written["part"].astype(int))):
        shards.append(write_shard(empty_journeys(vocab), out / shard_name(part)))  # no customer hashed here
    write_manifest(out, vocab, shards, settings_record(data, settings))
    n_journeys = int(np.sum([s["journeys"] for s in shards]))
    log.info("journey store %s (dask): %d journeys of %d rows from %d files in %d partitions", out, n_journeys,
             int(rows), len(files), n_parts)
    return {"journeys": n_journeys, "touches": int(np.sum([s["touches"] for s in shards])), "rows": int(rows),
            "files": len(files), "partitions": n_parts}
