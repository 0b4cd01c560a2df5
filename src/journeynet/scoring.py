"""What ``python predict.py`` does: score new journeys with a trained run's model.

The new file is read with the run's own data settings (column names, channel and campaign
maps, timestamp format) and cut into journeys with its ``lookback_days`` and ``max_len``,
so the model sees journeys built the way it was trained on. ``predictions.csv`` has one
row per journey: ``customer_id``, ``journey`` (0-based order within the customer),
``p``, and ``converted`` as the file records it.

Quickstart (after ``python train.py hydra.run.dir=runs/demo``)::

    python predict.py run_dir=runs/demo data.touchpoints=runs/demo/touchpoints.csv
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from journeynet.errors import InputError
from journeynet.outputs import OutputStage

log = logging.getLogger(__name__)


def run_data_settings(run_dir: Path) -> dict[str, Any]:
    """The ``data`` settings the run was trained with (its Hydra ``config.yaml``), or {}."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        log.warning("%s has no .hydra/config.yaml: reading the new file in the canonical layout", run_dir)
        return {}
    data = OmegaConf.load(saved).get("data") or {}
    # only the reading and journey settings: no paths, and nothing that needs the run's resolvers
    keep = ("columns", "conversion", "channel_map", "campaign_map", "timestamp_format", "dayfirst",
            "blank_channel", "lookback_days", "max_len")
    return {k: OmegaConf.to_container(data[k]) if OmegaConf.is_config(data[k]) else data[k]
            for k in keep if k in data}


def score_file(run_dir: str | Path, touchpoints: str | Path, batch_size: int = 4096) -> pd.DataFrame:
    """Per-journey conversion probabilities of ``touchpoints`` under the model of ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        A ``train.py`` run dir with ``model.ckpt`` and ``vocab.json``.
    touchpoints : str or Path
        New journeys, CSV or Parquet, in the layout the run read.
    batch_size : int
        Journeys per forward pass.

    Returns
    -------
    pd.DataFrame
        ``customer_id, journey, p, converted``.
    """
    from journeynet.data.history import with_history
    from journeynet.data.inputs import load_touchpoints
    from journeynet.data.journeys import Vocab, build_journeys
    from journeynet.model.module import JourneyModule
    from journeynet.model.predict import predict_proba

    run = Path(run_dir)
    missing = [n for n in ("model.ckpt", "vocab.json") if not (run / n).is_file()]
    if missing:
        raise InputError(f"run_dir={run_dir} has no {' or '.join(missing)}: pass a train.py run dir")
    settings = run_data_settings(run)
    read = {k: v for k, v in settings.items() if k not in ("lookback_days", "max_len")}
    tp = load_touchpoints(touchpoints, require_conversions=False, **read)
    vocab = Vocab.load(run / "vocab.json")
    unseen = ~pd.MultiIndex.from_frame(tp[["channel", "campaign_type"]]).isin(vocab.units)
    if unseen.any():
        names = sorted({f"{c}/{k}" if k else c for c, k in tp.loc[unseen, ["channel", "campaign_type"]].values})
        log.warning("%d touches on units the model never saw are read as unknown: %s", int(unseen.sum()),
                    ", ".join(names[:10]))
    journeys = build_journeys(tp, vocab, lookback_days=settings.get("lookback_days", 30),
                              max_len=settings.get("max_len", 50))
    journeys = with_history(journeys)  # the customer's earlier journeys in this file (model.history reads them)
    module = JourneyModule.load(run / "model.ckpt")
    p, _ = predict_proba(module.net, journeys, batch_size=batch_size)
    log.info("scored %d journeys of %d customers (mean p %.4f)", len(journeys),
             len(np.unique(journeys.customer_id)), float(p.mean()) if p.size else float("nan"))
    return pd.DataFrame({"customer_id": journeys.customer_id, "journey": journeys.journey, "p": p,
                         "converted": journeys.label.astype(int)})


def run_predict(cfg: DictConfig) -> float:
    """Score ``cfg.data.touchpoints`` and write ``predictions.csv``; returns the mean probability."""
    if not cfg.get("run_dir"):
        raise InputError("run_dir is not set: pass run_dir=DIR of a train.py run")
    if not cfg.data.get("touchpoints"):
        raise InputError("data.touchpoints is not set: pass data.touchpoints=PATH of the journeys to score")
    predictions = score_file(cfg.run_dir, cfg.data.touchpoints, int(cfg.get("batch_size", 4096)))
    with OutputStage(cfg.paths.output_dir) as stage:
        path = stage.write_csv("predictions.csv", predictions)
    log.info("wrote %s", path)
    return float(predictions["p"].mean())
