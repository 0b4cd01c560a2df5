"""The journey store: journeys as Parquet shards plus the vocabulary, a stable on-disk format.

Layout of a store directory::

    vocab.json            the Vocab (Vocab.save)
    manifest.json         format version, partitions, journey settings, one entry per shard
    part-00000.parquet    one row per journey of customer partition 0
    part-00001.parquet    ...

A shard has one row per journey: the per-journey arrays of
:class:`~journeynet.data.journeys.Journeys` as plain columns and the per-touch arrays as
``large_list`` columns sharing one set of offsets, so reading a shard back is a
zero-copy view of its Arrow buffers. A partition with no customers still has its
(empty) shard, so the shard list is the same whatever wrote it. The customer history
(``Journeys.history``) is not stored: a shard holds whole customers, so readers compute it
(:func:`journeynet.data.history.with_history`) and format 1 stores stay readable. Nor is the
calendar (``Journeys.calendar``): each shard's manifest entry records its first and last
touch (``first_touch``, ``last_touch``, ns), so every reader, whichever shards it reads,
places journeys against the whole store's window (:func:`store_window`).

Quickstart
----------
>>> import tempfile, pandas as pd
>>> from journeynet.data.journeys import Vocab, build_journeys
>>> tp = pd.DataFrame({"customer_id": ["a", "a"], "channel": ["email", "direct"], "campaign_type": ["", ""],
...     "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02"]), "converted": [0, 1], "revenue": [0.0, 9.0]})
>>> vocab = Vocab.fit(tp)
>>> d = tempfile.mkdtemp()
>>> write_store(d, vocab, [build_journeys(tp, vocab)], {"lookback_days": 30, "max_len": 50})
>>> v, j = read_store(d)
>>> len(j), j.label.tolist(), v == vocab
(1, [1], True)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from journeynet.data.calendar import calendar_window
from journeynet.data.journeys import Journeys, Vocab
from journeynet.data.partition import concat_journeys
from journeynet.errors import InputError

FORMAT = 1
MANIFEST, VOCAB = "manifest.json", "vocab.json"


def shard_name(partition: int) -> str:
    """File name of a partition's shard, ``part-00007.parquet``."""
    return f"part-{partition:05d}.parquet"


def _touch_fields() -> tuple[str, ...]:
    return tuple(Journeys._TOUCH)


#: Journeys fields a shard does not hold: ``history`` and ``calendar`` are computed on reading (shards keep
#: customers whole; the calendar's window comes from the manifest's shard entries, :func:`store_window`).
_NOT_STORED = ("offsets", "history", "calendar")


def journeys_to_table(journeys: Journeys) -> pa.Table:
    """One row per journey; per-touch arrays as ``large_list`` columns over ``offsets``."""
    touch = _touch_fields()
    offsets = pa.array(np.asarray(journeys.offsets, dtype=np.int64))
    cols: dict[str, pa.Array] = {}
    for f in fields(Journeys):
        value = getattr(journeys, f.name)
        if f.name in _NOT_STORED:
            continue
        if f.name in touch:
            cols[f.name] = pa.LargeListArray.from_arrays(offsets, pa.array(np.asarray(value)))
        elif f.name == "customer_id":
            cols[f.name] = pa.array(np.asarray(value, dtype=object).astype(str), type=pa.string())
        else:
            cols[f.name] = pa.array(np.asarray(value))
    return pa.table(cols)


def table_to_journeys(table: pa.Table) -> Journeys:
    """Inverse of :func:`journeys_to_table`."""
    touch = _touch_fields()
    kw: dict[str, Any] = {}
    offsets = None
    for f in fields(Journeys):
        if f.name in _NOT_STORED:
            continue
        col = table.column(f.name).combine_chunks() if table.num_rows else table.column(f.name)
        if isinstance(col, pa.ChunkedArray):  # an empty column has no chunk to combine
            col = pa.concat_arrays(col.chunks) if col.num_chunks else pa.array([], type=col.type)
        if f.name in touch:
            start = col.offsets[0].as_py() if len(col) else 0
            if offsets is None:
                offsets = np.asarray(col.offsets, dtype=np.int64) - start
            kw[f.name] = np.asarray(col.values)[start:start + int(offsets[-1])]
        elif f.name == "customer_id":
            kw[f.name] = np.asarray(col.to_pylist(), dtype=object)
        else:
            kw[f.name] = col.to_numpy(zero_copy_only=False)
    kw["offsets"] = offsets if offsets is not None else np.zeros(1, dtype=np.int64)
    return Journeys(**kw)


def empty_journeys(vocab: Vocab) -> Journeys:
    """Zero journeys with the dtypes of a built set (a partition without customers)."""
    import pandas as pd

    from journeynet.data.journeys import build_journeys

    # build_journeys needs a touch; one journey, then none of it, keeps every dtype
    one = pd.DataFrame({"customer_id": ["-"], "timestamp": pd.to_datetime(["2000-01-01"]), "channel": ["-"],
                        "campaign_type": [""], "converted": np.zeros(1, np.int8), "revenue": [0.0]})
    return build_journeys(one, vocab).subset(np.zeros(0, dtype=np.int64))


def write_shard(journeys: Journeys, path: str | Path) -> dict[str, Any]:
    """Write one shard; returns its manifest entry (file, journeys, touches, customers; first and last touch)."""
    pq.write_table(journeys_to_table(journeys), path, compression="zstd")
    entry = {"file": Path(path).name, "journeys": len(journeys), "touches": journeys.n_touches,
             "customers": int(len(set(journeys.customer_id.tolist())))}
    window = calendar_window(journeys)
    if window is not None:  # an empty shard has no touch
        entry["first_touch"], entry["last_touch"] = window
    return entry


def store_window(manifest: Mapping[str, Any]) -> list[int] | None:
    """The whole store's ``[first touch, last touch]`` in ns, from its shard entries.

    None when a non-empty shard's entry lacks them (a store written before they were
    recorded): readers then place journeys against the span of what they read.
    """
    entries = [s for s in manifest["shards"] if int(s["journeys"])]
    if not entries or any("first_touch" not in s or "last_touch" not in s for s in entries):
        return None
    return [min(int(s["first_touch"]) for s in entries), max(int(s["last_touch"]) for s in entries)]


def write_manifest(directory: str | Path, vocab: Vocab, shards: Sequence[Mapping[str, Any]],
                   settings: Mapping[str, Any]) -> None:
    """Write ``vocab.json`` and ``manifest.json`` beside shards already written."""
    d = Path(directory)
    vocab.save(d / VOCAB)
    manifest = {"format": FORMAT, "partitions": len(shards), **dict(settings),
                "journeys": int(sum(s["journeys"] for s in shards)),
                "touches": int(sum(s["touches"] for s in shards)),
                "shards": sorted((dict(s) for s in shards), key=lambda s: s["file"])}
    # The manifest marks a store complete (readers look for it): it appears whole or not at all,
    # so a process started beside the builder (torchrun, srun) never reads half of it.
    tmp = d / f"{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, d / MANIFEST)


def write_store(directory: str | Path, vocab: Vocab, partitions: Sequence[Journeys],
                settings: Mapping[str, Any]) -> None:
    """Write every partition's shard (partition ``p`` is ``partitions[p]``) and the manifest."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    shards = [write_shard(j, d / shard_name(p)) for p, j in enumerate(partitions)]
    write_manifest(d, vocab, shards, settings)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The store's manifest; raises :class:`InputError` when ``directory`` is not a journey store."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise InputError(f"data.journeys: {directory} is not a journey store (no {MANIFEST})")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise InputError(f"data.journeys: {path} has format {manifest.get('format')}, this version reads {FORMAT}")
    return manifest


def read_store(directory: str | Path, shards: Iterable[int] | None = None) -> tuple[Vocab, Journeys]:
    """Vocabulary and journeys of a store; ``shards`` (indices into the manifest) reads only those."""
    d = Path(directory)
    manifest = read_manifest(d)
    vocab = Vocab.load(d / VOCAB)
    entries = manifest["shards"]
    chosen = range(len(entries)) if shards is None else list(shards)
    parts = []
    for i in chosen:
        path = d / entries[i]["file"]
        if not path.is_file():
            raise InputError(f"data.journeys: shard {path} listed in {d / MANIFEST} is missing")
        parts.append(table_to_journeys(pq.read_table(path)))
    return vocab, concat_journeys(parts) if parts else empty_journeys(vocab)


_SPARK_TYPES = {pa.int64(): "bigint", pa.int8(): "tinyint", pa.float32(): "float", pa.float64(): "double",
                pa.string(): "string"}


def spark_schema(vocab: Vocab) -> str:
    """The shard schema as a Spark DDL string, for ``mapInPandas(fn, schema=spark_schema(vocab))``."""
    schema = journeys_to_table(empty_journeys(vocab)).schema
    parts = []
    for field in schema:
        kind = field.type
        if pa.types.is_large_list(kind) or pa.types.is_list(kind):
            parts.append(f"{field.name} array<{_SPARK_TYPES[kind.value_type]}>")
        else:
            parts.append(f"{field.name} {_SPARK_TYPES[kind]}")
    return ", ".join(parts)
