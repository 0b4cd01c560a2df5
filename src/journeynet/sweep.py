"""Say which trial of a sweep won: a Hydra callback run when a multirun ends.

Each ``train.py`` trial writes ``metrics.json`` into its own sweep subdirectory; at the end
of ``python train.py -m ...`` the callback reads them, writes ``best_trial.json`` into the
sweep dir and logs the winner with its overrides. Reading the files, rather than keeping
the return values in memory, works for launchers that run trials in other processes.

Quickstart (``conf/hydra/default.yaml`` registers it)::

    python train.py -m model.hidden_size=32,64   # ... best trial 1 (model.hidden_size=64): val/auroc 0.83
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def best_trial(sweep_dir: str | Path, metric: str, mode: str = "max") -> dict[str, Any] | None:
    """The sweep's trials by ``metric`` (as ``metrics.json`` spells it: ``/`` becomes ``_``).

    Returns
    -------
    dict or None
        ``metric``, ``mode``, ``best`` (``trial``, ``dir``, ``value``, ``overrides``) and
        every ``trials`` entry; None when no trial wrote the metric.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"optimized_mode must be max or min, got {mode!r}")
    key = metric.replace("/", "_")
    trials = []
    for metrics_file in sorted(Path(sweep_dir).glob("*/metrics.json")):
        value = json.loads(metrics_file.read_text()).get(key)
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        overrides_file = metrics_file.parent / ".hydra" / "overrides.yaml"
        overrides = list(OmegaConf.load(overrides_file)) if overrides_file.is_file() else []
        trials.append({"trial": metrics_file.parent.name, "dir": str(metrics_file.parent),
                       "value": float(value), "overrides": overrides})
    if not trials:
        return None
    pick = max if mode == "max" else min
    return {"metric": metric, "mode": mode, "best": pick(trials, key=lambda t: t["value"]), "trials": trials}


class BestTrialCallback(Callback):
    """Write ``best_trial.json`` and log the winner when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Read every trial's ``metrics.json`` under ``hydra.sweep.dir``."""
        metric = config.get("optimized_metric")
        if not metric:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        summary = best_trial(sweep_dir, metric, str(config.get("optimized_mode", "max")))
        if summary is None:
            log.warning("sweep in %s: no trial wrote %s", sweep_dir, metric)
            return
        (sweep_dir / "best_trial.json").write_text(json.dumps(summary, indent=2) + "\n")
        best = summary["best"]
        log.info("sweep: best trial %s (%s): %s %.4f of %d trials; %s", best["trial"],
                 " ".join(best["overrides"]) or "no overrides", metric, best["value"], len(summary["trials"]),
                 sweep_dir / "best_trial.json")
