"""Real journeys: the journey model against both baselines on a user-disjoint split.

    PYTHONPATH=src python bench/bench_real.py [--data ../shared/data/criteo_attribution_dev]
        [--seed 0] [override ...]

Composes ``train.py``'s config with ``data=criteo`` (plus any Hydra overrides given, e.g.
``model=attention_gru`` or ``trainer.max_epochs=5``), reads the development set's
``touchpoints.parquet``, splits it by **user** (``data.split_group``; no user is in two
splits, checked here), trains the model exactly as ``train.py`` does (same
``make_journeys`` and ``train_model``, best checkpoint by validation, calibration on
validation) and scores the test users. Reports test AUC and log-loss of the model, the
gradient-boosting and the logistic baseline, wall times, and where the model wins or
loses: by journey length, by the gap structure (shortest gap between touches) and per
decile of predicted probability (calibration).

The data set is never copied: it is read from the path given.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from journeynet.data.inputs import load_inputs
from journeynet.data.journeys import split_keys
from journeynet.model.baselines import binary_metrics
from journeynet.model.training import make_journeys, train_model

ROOT = Path(__file__).resolve().parents[1]
_NS_PER_HOUR = 3.6e12


def compose_cfg(data_dir: Path, seed: int, overrides: list[str], out_dir: str):
    """``train.py``'s config with the criteo preset and the bench's output dir."""
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[
            "data=criteo", f"data.touchpoints={data_dir / 'touchpoints.parquet'}", f"seed={seed}",
            f"paths.output_dir={out_dir}", "trainer.enable_progress_bar=false", *overrides,
        ])


def _auc_ll(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    m = binary_metrics(y, p)
    return m["auc"], m["logloss"]


def breakdown(test, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """AUC and log-loss per model within journey-length and shortest-gap groups."""
    lengths = np.diff(test.offsets)
    gap_h = np.diff(test.time) / _NS_PER_HOUR
    first = np.zeros(len(test.time), dtype=bool)
    first[test.offsets[:-1]] = True
    gap_h = np.where(first[1:], np.inf, gap_h)
    min_gap = np.minimum.reduceat(np.r_[np.inf, gap_h], test.offsets[:-1])
    groups = {
        "length": pd.cut(lengths, [0, 3, 4, 6, 10, 1000], labels=["3", "4", "5-6", "7-10", ">10"]),
        "min gap": pd.cut(min_gap, [-1, 0.1, 1, 24, np.inf], labels=["<6 min", "6 min-1 h", "1-24 h", ">24 h"]),
    }
    y = test.label.astype(int)
    rows = []
    for gname, g in groups.items():
        for level in g.categories:
            m = np.asarray(g == level)
            row = {"group": gname, "level": level, "n": int(m.sum()), "rate": float(y[m].mean())}
            for name, p in preds.items():
                row[f"{name} auc"], row[f"{name} ll"] = _auc_ll(y[m], p[m])
            rows.append(row)
    return pd.DataFrame(rows)


def calibration(y: np.ndarray, preds: dict[str, np.ndarray]) -> pd.DataFrame:
    """Mean predicted vs observed conversion rate per decile of each model's prediction."""
    rows = []
    for name, p in preds.items():
        dec = pd.qcut(p, 10, labels=False, duplicates="drop")
        for d in np.unique(dec):
            m = dec == d
            rows.append({"model": name, "decile": int(d), "predicted": p[m].mean(), "observed": y[m].mean()})
    frame = pd.DataFrame(rows)
    frame["abs_err"] = (frame["predicted"] - frame["observed"]).abs()
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/criteo_attribution_dev"),
                    help="folder holding touchpoints.parquet (default ../shared/data/criteo_attribution_dev)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the config's)")
    ap.add_argument("--details", action="store_true", help="print the breakdown and calibration tables")
    ap.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.max_epochs=5")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("CI", "true")

    if not (args.data / "touchpoints.parquet").is_file():
        raise SystemExit(f"bench_real: no touchpoints.parquet under {args.data} (pass --data DIR)")
    out = tempfile.mkdtemp(prefix="bench_real_")
    cfg = compose_cfg(args.data, args.seed, args.overrides, out)
    torch.set_num_threads(args.threads or int(cfg.torch_threads))
    pl.seed_everything(args.seed, workers=True)  # as train.py does: initial weights and dropout follow --seed
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    inputs = load_inputs(cfg.data)
    vocab, journeys, splits = make_journeys(cfg, inputs.touchpoints, inputs.spend, inputs.test_touchpoints)
    keys = split_keys(journeys.customer_id, cfg.data.get("split_group"))
    seen = set(keys[splits["train"]]) | set(keys[splits["val"]])
    assert not seen & set(keys[splits["test"]]), "a test user is also in train or val"
    t_data = time.perf_counter() - t0
    callbacks = [instantiate(cb) for name, cb in cfg.callbacks.items() if name != "lr_monitor"]
    trained = train_model(cfg, vocab, journeys, splits, [], callbacks)
    t_all = time.perf_counter() - t0
    m = trained.metrics
    test = journeys.subset(splits["test"])
    preds = {"model": trained.test_p, **trained.baseline_p}
    print(f"cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, load before "
          f"{tuple(round(x, 1) for x in load0)}, after {tuple(round(x, 1) for x in os.getloadavg())}")
    print(f"model {cfg.model._target_.rsplit('.', 1)[1]}; overrides {args.overrides}; seed {args.seed}")
    print(f"journeys: {len(splits['train'])} train, {len(splits['val'])} val, {len(splits['test'])} test "
          f"({len(set(keys[splits['test']]))} test users, none seen in training)")
    print(f"epochs run {m['epochs']}; calibration {m['calibration']}")
    print("| model | test AUC | test log-loss |")
    print("|---|---|---|")
    print(f"| journey model | {m['test_auc']:.4f} | {m['test_logloss']:.4f} |")
    for name in ("gbdt", "logistic"):
        print(f"| {name} | {m[name + '_test_auc']:.4f} | {m[name + '_test_logloss']:.4f} |")
    print(f"journey model training {m['train_seconds']:.1f} s wall, {m['train_cpu_seconds']:.1f} s CPU; "
          f"both baselines {m['baseline_seconds']:.1f} s; data {t_data:.1f} s; whole bench {t_all:.1f} s")
    print(f"verdict: {m['verdict']}")
    if args.details:
        pd.set_option("display.width", 200)
        print(breakdown(test, preds).round(4).to_string(index=False))
        cal = calibration(test.label.astype(int), preds)
        print(cal.groupby("model")["abs_err"].agg(["mean", "max"]).round(4).to_string())


if __name__ == "__main__":
    main()
