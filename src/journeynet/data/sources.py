"""Read a directory or glob of Parquet files as one table, with a date range pushed down.

A data lake holds touchpoints and spend as many Parquet files, often in hive
partitions (``date=2024-01-01/part-0.parquet``). :func:`read_dataset` reads only the
columns asked for and, given ``start`` / ``end``, only the row groups whose statistics
can hold a date in the range (the rest are never decoded). Every file's schema is
checked before any data is read, so a missing column, a column whose type changes
from file to file, or an unreadable file is reported with the file's name.

Quickstart
----------
>>> import pandas as pd, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for m in (1, 2):
...     pd.DataFrame({"date": pd.to_datetime([f"2024-0{m}-01", f"2024-0{m}-02"]),
...                   "spend": [1.0, 2.0]}).to_parquet(d / f"m{m}.parquet")
>>> df = read_dataset(d, "spend", columns=["date", "spend"], date_column="date",
...                   start="2024-02-01")
>>> df["spend"].tolist(), df.attrs["scan"]["files"]
([1.0, 2.0], 1)
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from journeynet.errors import InputError

log = logging.getLogger(__name__)

PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARS = set("*?[")
# Files a partitioned engine restricts the next dataset read to (one task reads one file).
_ONLY_FILES: ContextVar[tuple[str, ...] | None] = ContextVar("only_files", default=None)


@contextmanager
def only_files(files: Sequence[str]) -> Iterator[None]:
    """Within the block, dataset reads take only ``files`` of the directory or glob they are given.

    The partitioned engines read one file per task through the ordinary loaders, so
    every check of :mod:`journeynet.data.inputs` runs unchanged on each file.
    """
    token = _ONLY_FILES.set(tuple(str(f) for f in files))
    try:
        yield
    finally:
        _ONLY_FILES.reset(token)


def is_dataset_path(path: str | Path) -> bool:
    """True when ``path`` names a directory or a glob pattern rather than one file."""
    text = str(path)
    return bool(_GLOB_CHARS & set(text)) or Path(text).expanduser().is_dir()


def dataset_files(path: str | Path, what: str) -> tuple[list[str], str]:
    """The Parquet files a directory or glob names, sorted, and the base directory of their partitions.

    Hidden and underscore-prefixed entries (``_SUCCESS``, ``.crc``) are skipped, as Spark
    and Hive writers leave them beside the data.
    """
    text = str(Path(str(path)).expanduser())
    if Path(text).is_dir():
        base = text
        candidates = [str(p) for p in Path(text).rglob("*") if p.is_file()]
    else:
        head = text.split("*")[0].split("?")[0].split("[")[0]
        base = head if head.endswith("/") else str(Path(head).parent)
        candidates = [p for p in glob.glob(text, recursive=True) if Path(p).is_file()]
    files = sorted(
        p for p in candidates
        if p.lower().endswith(PARQUET_SUFFIXES)
        and not any(part.startswith(("_", ".")) for part in Path(p).relative_to(base).parts)
    )
    if not files:
        raise InputError(f"{what}: no Parquet files (.parquet, .pq) match {path}")
    chosen = _ONLY_FILES.get()
    if chosen is not None:
        files = [f for f in files if f in chosen]
    return files, base


def open_dataset(path: str | Path, what: str) -> ds.FileSystemDataset:
    """Open the files under ``path`` as one pyarrow dataset (hive partitions become columns)."""
    files, base = dataset_files(path, what)
    try:
        return ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=base)
    except (pa.ArrowInvalid, OSError) as exc:
        bad = _first_unreadable(files)
        raise InputError(f"{what} file is not readable Parquet: {bad or path} ({exc})") from exc


def _first_unreadable(files: Sequence[str]) -> str | None:
    import pyarrow.parquet as pq

    for f in files:
        try:
            pq.read_schema(f)
        except Exception:  # noqa: BLE001 - pyarrow raises several unrelated types
            return f
    return None


def check_schemas(dataset: ds.FileSystemDataset, columns: Sequence[str], what: str) -> None:
    """Raise naming the first file that lacks one of ``columns`` or types it unlike the first file."""
    partition_cols = set(dataset.partitioning.schema.names) if dataset.partitioning else set()
    seen: dict[str, tuple[pa.DataType, str]] = {}
    for frag in dataset.get_fragments():
        try:
            schema = frag.physical_schema
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several unrelated types
            raise InputError(f"{what} file is not readable Parquet: {frag.path} ({exc})") from exc
        missing = [c for c in columns if c not in schema.names and c not in partition_cols]
        if missing:
            raise InputError(
                f"{what} file {frag.path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                f"found {schema.names}"
            )
        for c in columns:
            if c not in schema.names:
                continue
            kind = schema.field(c).type
            if c in seen and not _compatible(seen[c][0], kind):
                raise InputError(
                    f"{what} file {frag.path}: column '{c}' is {kind}, but {seen[c][0]} in {seen[c][1]}"
                )
            seen.setdefault(c, (kind, frag.path))


def _compatible(a: pa.DataType, b: pa.DataType) -> bool:
    """Same type, or two of a kind that Arrow casts between without loss of meaning."""
    if a == b:
        return True
    kinds = (pa.types.is_string, pa.types.is_large_string, pa.types.is_dictionary)
    text = lambda t: any(k(t) for k in kinds)  # noqa: E731
    return (text(a) and text(b)) or (pa.types.is_integer(a) and pa.types.is_integer(b)) \
        or (pa.types.is_floating(a) and pa.types.is_floating(b)) \
        or (pa.types.is_timestamp(a) and pa.types.is_timestamp(b))


def date_bounds(start: Any = None, end: Any = None) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``[start, end)`` as naive timestamps; a date-only ``end`` includes its whole day.

    Raises :class:`InputError` naming ``data.start`` / ``data.end`` when either is not a
    date or the range is empty.
    """
    out = []
    for name, value in (("data.start", start), ("data.end", end)):
        if value is None or value == "":
            out.append(None)
            continue
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{name} is not a date: {value!r}") from exc
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        if name == "data.end" and ts == ts.normalize() and len(str(value)) <= 10:
            ts = ts + pd.Timedelta(days=1)  # "2024-03-31" means through the end of that day
        out.append(ts)
    lo, hi = out
    if lo is not None and hi is not None and hi <= lo:
        raise InputError(f"data.start ({start}) must come before data.end ({end})")
    return lo, hi


def within_dates(frame: pd.DataFrame, column: str, start: Any = None, end: Any = None,
                 what: str = "data", path: Any = "") -> pd.DataFrame:
    """Rows of a canonical frame whose ``column`` lies in the :func:`date_bounds` range.

    Raises :class:`InputError` naming ``what`` and ``path`` when no row is left.
    """
    lo, hi = date_bounds(start, end)
    if lo is None and hi is None:
        return frame
    t = frame[column]
    keep = pd.Series(True, index=frame.index)
    if lo is not None:
        keep &= t >= lo
    if hi is not None:
        keep &= t < hi
    if not keep.any():
        raise InputError(f"{what} file {path}: no rows between data.start={start} and data.end={end}")
    return frame if keep.all() else frame[keep.to_numpy()].reset_index(drop=True)


def touch_scan(columns: dict[str, Any], conversion: dict[str, Any] | None, start: Any = None,
               end: Any = None) -> dict[str, Any]:
    """:func:`read_dataset` arguments for a touchpoints layout: the mapped columns and the date range."""
    name = lambda canon: columns.get(canon, canon)  # noqa: E731
    conv = conversion or {}
    flag = conv.get("event_column") or conv.get("flag_column") or name("converted")
    required = [str(c) for c in (name("customer_id"), name("timestamp"), name("channel"), flag) if c]
    optional = [str(c) for c in (name("campaign_type"), name("revenue")) if c]
    return {"columns": required, "optional": optional, "date_column": str(name("timestamp")),
            "start": start, "end": end}


def spend_scan(columns: dict[str, Any], constants: Sequence[str], optional: Sequence[str], start: Any = None,
               end: Any = None) -> dict[str, Any]:
    """:func:`read_dataset` arguments for a spend layout (``constants``: names given in config, not read)."""
    name = lambda canon: columns.get(canon, canon)  # noqa: E731
    keys = ["date", "spend"] + [k for k in ("channel", "campaign_type") if k not in constants]
    return {"columns": [str(name(k)) for k in keys], "optional": [str(name(k)) for k in optional if name(k)],
            "date_column": str(name("date")), "start": start, "end": end}


def date_filter(schema: pa.Schema, column: str, start: Any = None, end: Any = None) -> ds.Expression | None:
    """A pushdown filter on a timestamp or date column; None when there is no range or no typed column.

    A text column cannot be compared before it is parsed, so its range is applied after
    parsing instead (every row group is read).
    """
    lo, hi = date_bounds(start, end)
    if (lo is None and hi is None) or column not in schema.names:
        return None
    kind = schema.field(column).type
    if pa.types.is_timestamp(kind):
        conv = lambda ts: pa.scalar(ts.tz_localize(kind.tz) if kind.tz else ts, type=kind)  # noqa: E731
    elif pa.types.is_date(kind):
        # a date d holds times [d, d + 1 day): keep it when that overlaps [lo, hi)
        conv = lambda ts: pa.scalar(ts.date(), type=kind)  # noqa: E731
        lo = lo.normalize() if lo is not None else None
        hi = (hi - pd.Timedelta(1, "ns")).normalize() + pd.Timedelta(days=1) if hi is not None else None
    else:
        log.info("column '%s' is %s: the date range is applied after parsing, not pushed down", column, kind)
        return None
    expr = None
    field = ds.field(column)
    if lo is not None:
        expr = field >= conv(lo)
    if hi is not None:
        upper = field < conv(hi)
        expr = upper if expr is None else expr & upper
    return expr


def read_dataset(
    path: str | Path,
    what: str,
    columns: Sequence[str] | None = None,
    date_column: str | None = None,
    start: Any = None,
    end: Any = None,
    optional: Sequence[str] = (),
) -> pd.DataFrame:
    """Read the Parquet files of a directory or glob into one frame.

    Parameters
    ----------
    path : str or Path
        Directory (searched recursively, hive partitions allowed) or glob pattern.
    what : str
        What the files hold ("touchpoints", "spend"), used in error messages.
    columns : sequence of str, optional
        Source columns to read (default: all). Each must be in every file (or a partition key).
    date_column : str, optional
        Column the ``start`` / ``end`` range applies to.
    start, end : date-like, optional
        Keep rows with ``start <= date_column < end`` (a date-only ``end`` includes its day);
        pushed down to row-group statistics when the column is a timestamp or date.
    optional : sequence of str
        Columns read when the dataset has them.

    Returns
    -------
    pd.DataFrame
        Rows in file order then row order; ``attrs["scan"]`` counts the files and row
        groups read against the total.
    """
    dataset = open_dataset(path, what)
    wanted = list(dict.fromkeys([*(columns or dataset.schema.names), *([date_column] if date_column else [])]))
    wanted += [c for c in optional if c in dataset.schema.names and c not in wanted]
    check_schemas(dataset, wanted, what)  # one footer read per file
    expr = date_filter(dataset.schema, date_column, start, end) if date_column else None
    fragments = list(dataset.get_fragments())
    total = sum(f.num_row_groups for f in fragments)
    kept = []
    for frag in dataset.get_fragments(filter=expr) if expr is not None else fragments:
        # statistics prune row groups here, before any page is decoded
        kept.extend(frag.split_by_row_group(expr, schema=dataset.schema) if expr is not None else [frag])
    n_groups = total if expr is None else len(kept)
    n_files = len({f.path for f in kept})
    try:
        if kept:
            sub = ds.FileSystemDataset(kept, dataset.schema, dataset.format)
            table = sub.to_table(columns=wanted, filter=expr)
        else:
            table = dataset.schema.empty_table().select(wanted)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{what} files under {path} are not readable Parquet ({exc})") from exc
    frame = table.to_pandas()
    if len(frame) == 0:
        raise InputError(f"{what} files under {path}: no rows" + (" in the date range" if expr is not None else ""))
    frame.attrs["scan"] = {"files": n_files, "files_total": len(fragments), "row_groups": n_groups,
                           "row_groups_total": total, "rows": len(frame)}
    log.info("%s: read %d rows from %d of %d files (%d of %d row groups) under %s", what, len(frame), n_files,
             len(fragments), n_groups, total, path)
    return frame
