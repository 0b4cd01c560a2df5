"""Stage output files under temporary names and publish them together.

A failed run must not leave a partial ``metrics.json`` or ``plan.csv`` behind, so
every writer goes to ``<stem>.tmp-<pid><suffix>`` in the run dir and
:meth:`OutputStage.commit` renames them to their final names.

Quickstart
----------
>>> import tempfile, pandas as pd
>>> run_dir = tempfile.mkdtemp()
>>> with OutputStage(run_dir) as out:
...     _ = out.write_json("metrics.json", {"test_auc": 0.71, "gap": float("nan")})
...     _ = out.write_csv("plan.csv", pd.DataFrame({"spend": [1.0]}))
>>> sorted(p.name for p in Path(run_dir).iterdir())
['metrics.json', 'plan.csv']
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def to_jsonable(obj: Any) -> Any:
    """Convert numpy, pandas and path values to plain JSON types; NaN and inf become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray | pd.Series | pd.Index):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, pd.Timestamp | datetime | date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or obj is pd.NaT or obj is pd.NA:
        return None
    return obj


def write_csv_file(path: str | Path, df: pd.DataFrame, **to_csv_kwargs: Any) -> None:
    """``df`` as CSV at ``path``, no index unless asked: every CSV a run writes."""
    to_csv_kwargs.setdefault("index", False)
    df.to_csv(path, **to_csv_kwargs)


def write_json_file(path: str | Path, obj: Any) -> None:
    """``obj`` as JSON at ``path``, indent 2, NaN written as null: every JSON a run writes."""
    Path(path).write_text(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")


class OutputStage:
    """Collect a run's output files and publish them only when the run succeeds.

    Parameters
    ----------
    run_dir : str or Path
        Directory the final files go to (created if needed).

    Notes
    -----
    Used as a context manager it commits on a clean exit and deletes the
    temporaries when an exception escapes (the exception still propagates).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._staged: dict[Path, Path] = {}  # final path -> temporary path

    def path_for(self, name: str) -> Path:
        """Return a temporary path for ``name`` to write to (keeps the suffix for plotting).

        Parameters
        ----------
        name : str
            Final file name relative to the run dir, e.g. ``"attention.png"``.

        Returns
        -------
        Path
            ``<stem>.tmp-<pid><suffixes>`` next to the final file.
        """
        final = self.run_dir / name
        suffixes = "".join(final.suffixes)
        stem = final.name[: len(final.name) - len(suffixes)] if suffixes else final.name
        tmp = final.with_name(f"{stem}.tmp-{os.getpid()}{suffixes}")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        self._staged[final] = tmp
        return tmp

    def write_csv(self, name: str, df: pd.DataFrame, **to_csv_kwargs: Any) -> Path:
        """Stage ``df`` as CSV (no index unless asked) and return its final path."""
        write_csv_file(self.path_for(name), df, **to_csv_kwargs)
        return self.run_dir / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Stage ``obj`` as JSON with indent 2, NaN written as null; return its final path."""
        write_json_file(self.path_for(name), obj)
        return self.run_dir / name

    def write_text(self, name: str, text: str) -> Path:
        """Stage ``text`` and return its final path."""
        self.path_for(name).write_text(text)
        return self.run_dir / name

    def commit(self) -> list[Path]:
        """Rename every staged file to its final name.

        Returns
        -------
        list of Path
            The final paths, in staging order.
        """
        missing = [str(tmp) for tmp in self._staged.values() if not tmp.exists()]
        if missing:
            # Publishing only some files would leave the partial output the stage exists to avoid.
            raise FileNotFoundError(f"staged output was never written: {', '.join(missing)}")
        done = []
        for final, tmp in self._staged.items():
            os.replace(tmp, final)  # atomic per file on one filesystem
            done.append(final)
        self._staged.clear()
        if done:  # a DDP rank other than 0 stages nothing; saying "wrote 0" would read as a failure
            log.info("wrote %d output files to %s", len(done), self.run_dir)
        return done

    def discard(self) -> None:
        """Delete every staged temporary file."""
        for tmp in self._staged.values():
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self) -> OutputStage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.discard()
            return
        try:
            self.commit()
        except BaseException:
            self.discard()
            raise
