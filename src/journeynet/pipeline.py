"""What ``python train.py`` does, step by step; ``train.py`` only composes the config.

Steps: load inputs -> journeys -> attention-LSTM and baselines -> funnel fit and
interventions -> classic models and diagnostics -> response curves -> outputs. All
outputs are staged under temporary names and renamed together at the end, so a run
that fails leaves no half-written file.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from journeynet.attribution import tables as attr
from journeynet.attribution.classic import classic_credit
from journeynet.background import Background
from journeynet.data.inputs import load_inputs
from journeynet.data.journeys import Journeys
from journeynet.model.shards import journeys_for_run, store_for_launched_rank, trainer_processes
from journeynet.model.training import TrainedModel, add_baselines, train_model
from journeynet.net_free import INPUT_COPIES, MULTIPLE_ONE, funnel_effects, net_free_work, write_input_copies
from journeynet.outputs import OutputStage
from journeynet.preflight import SettingError, check_device, check_resume

log = logging.getLogger(__name__)


def run_training(cfg: DictConfig) -> float:
    """Run the whole ``train.py`` job; returns the metric named by ``cfg.optimized_metric``."""
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg.torch_threads))
    check_device(cfg.trainer)
    if cfg.attribution.engine not in ("funnel", "none"):
        raise SettingError(f"attribution.engine must be funnel or none, got '{cfg.attribution.engine}'")
    if cfg.response.method in ("exposure", "daily") and 1.0 not in [float(m) for m in cfg.response.spend_multiples]:
        raise SettingError(MULTIPLE_ONE)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank_store = store_for_launched_rank(cfg)  # a DDP rank >= 1 trains on its shards: no inputs loaded
    inputs = load_inputs(cfg.data, funnel_sample(cfg)) if rank_store is None else None
    vocab, journeys, splits = rank_store or journeys_for_run(cfg, inputs)  # a store when data.journeys/engine ask
    if inputs is not None and inputs.spend is None:
        declare_paid(vocab, inputs.paid_channels)
    check_resume(cfg.get("ckpt_path"), OmegaConf.to_container(cfg.model, resolve=True),
                 {"n_channels": vocab.n_channels, "n_campaigns": vocab.n_campaigns})
    logger = [instantiate(lg) for lg in cfg.get("logger", {}).values()]
    callbacks = [instantiate(cb) for cb in cfg.get("callbacks", {}).values()]
    with OutputStage(out_dir) as stage, contextlib.ExitStack() as running:
        side, copies = None, None
        if background_enabled(cfg, len(journeys) if isinstance(journeys, Journeys) else 0):
            if inputs.truth is not None:
                copies = {name: stage.path_for(name) for name in INPUT_COPIES}
            side = running.enter_context(Background(net_free_work, net_free_settings(cfg), inputs, journeys, splits,
                                                    vocab.n_channels, copies,
                                                    threads=int(cfg.get("torch_threads") or 1)))
        trained = train_model(cfg, vocab, journeys, splits, logger, callbacks, with_baselines=side is None)
        if trained is None:  # a DDP rank other than 0, done after fit: rank 0 evaluates and writes once
            return float("nan")
        if inputs.truth is not None and inputs.test_touchpoints is None:
            trained.metrics.update(best_achievable(inputs, trained, cfg.data.lookback_days))
        views = journey_views(cfg, trained)
        if side is not None:
            add_baselines(trained, *side.result()["baselines"])
        funnel = side.result()["funnel"] if side is not None else funnel_effects(cfg, inputs)
        table, extras = attribute(cfg, inputs, trained, views, funnel)
        checks = (extras["checks_table"], extras["checks"]) if "checks" in extras else None
        figures = make_figures(trained, table, checks)
        write_outputs(stage, cfg, inputs, trained, table, extras, figures, inputs_copied=copies is not None)
        _log_tensorboard(logger, cfg, trained, figures)
    metric = trained.metrics.get(cfg.optimized_metric.replace("/", "_"), trained.metrics["test_auc"])
    return float(metric)


def funnel_sample(cfg: DictConfig) -> tuple[int | None, int] | None:
    """The funnel's customer sample (``max_sequences``, ``seed``), kept while streamed touchpoints are read."""
    if cfg.attribution.engine != "funnel":
        return None
    f = cfg.attribution.funnel
    return (None if f.max_sequences is None else int(f.max_sequences)), int(f.seed)


def net_free_settings(cfg: DictConfig) -> DictConfig:
    """The settings :func:`net_free_work` reads, resolved here: ``${hydra:...}`` means nothing in another process."""
    keys = ("seed", "attribution", "response")
    return OmegaConf.create({k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k])
                             else cfg[k] for k in keys if k in cfg})


def background_enabled(cfg: DictConfig, n_journeys: int) -> bool:
    """Whether the net-free work gets a second process (``background``: true, false or auto).

    auto: when the trainer is one process and there are at least 20,000 journeys. The
    second process takes about 6 s to start (importing torch, pandas and scikit-learn);
    below that size the work it would take over is cheaper than its start. Under DDP every
    rank is a process already; the work then runs after training, as before.
    """
    setting = str(cfg.get("background", "auto")).lower()
    if setting not in ("true", "false", "auto"):
        raise SettingError(f"background must be true, false or auto, got '{cfg.background}'")
    if setting == "false" or trainer_processes(cfg.trainer) > 1:
        return False
    return setting == "true" or n_journeys >= 20_000


def declare_paid(vocab: Any, channels: list[str]) -> None:
    """Flag every unit of ``channels`` paid (``data.paid_channels`` when there is no spend)."""
    vocab.paid = [p or c in channels for (c, _), p in zip(vocab.units, vocab.paid, strict=True)]


def _no_funnel_reason(cfg: DictConfig, inputs: Any, vocab: Any) -> str:
    """Why the interventional columns are empty, logged once as the sentence a user reads."""
    if inputs.spend is not None:
        log.warning("attribution.engine=%s: interventional effects are not computed", cfg.attribution.engine)
        return (f"not computed: attribution.engine={cfg.attribution.engine}; "
                "the classic and attention columns are computed")
    paid = sorted({c for (c, _), p in zip(vocab.units, vocab.paid, strict=True) if p})
    if paid:
        log.warning("no spend data: attribution.csv gives the classic and attention views of the paid "
                    "channels %s; interventional effects and response curves need spend (data.spend)",
                    ", ".join(paid))
    else:
        log.warning("no spend data and no data.paid_channels: attribution.csv gives the classic and attention "
                    "views of every channel; declare paid media with data.paid_channels=[...]; "
                    "interventional effects and response curves need spend (data.spend)")
    return attr.NO_SPEND_NOTE


def journey_views(cfg: DictConfig, trained: TrainedModel) -> dict[str, Any]:
    """The views read from the journeys and the trained net: classic rules, attention roles, naive deletion.

    Computed while the second process may still be fitting the engine.
    """
    a = cfg.attribution
    vocab, journeys = trained.vocab, trained.journeys
    n_units = len(vocab.units)
    classic = classic_credit(journeys, n_units, half_life_days=a.half_life_days)
    sample = _sample(len(journeys), a.naive_max_journeys, cfg.seed)
    sub = journeys.subset(sample)
    from journeynet.model.predict import predict_proba

    device = "cuda" if str(cfg.trainer.get("accelerator")) in ("gpu", "cuda") and torch.cuda.is_available() else "cpu"
    p_sub, att = predict_proba(trained.module.net, sub, device=device)
    roles = attr.attention_roles(sub, att, n_units)
    paid_ids = vocab.unit_frame().query("paid")["unit_id"].tolist()
    naive = attr.naive_deletion(trained.module.net, sub, paid_ids, p_sub, device=device)
    naive = {u: v * len(journeys) / max(len(sample), 1) for u, v in naive.items()}
    return {"classic": classic, "roles": roles, "naive": naive}


def attribute(cfg: DictConfig, inputs: Any, trained: TrainedModel, views: dict[str, Any],
              funnel_result: tuple[pd.DataFrame, dict[str, Any]] | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every attribution view, as one table, plus the funnel's by-products.

    ``views`` from :func:`journey_views`, ``funnel_result`` from :func:`funnel_effects`.
    """
    funnel, extras = funnel_result if funnel_result is not None else (None, {})
    reason = _no_funnel_reason(cfg, inputs, trained.vocab) if funnel is None else ""
    table = attr.assemble(trained.vocab, views["classic"], views["roles"], views["naive"], funnel, reason)
    return table, extras


def best_achievable(inputs: Any, trained: TrainedModel, lookback_days: float) -> dict[str, float]:
    """Metrics of the generator's true journey probabilities on the same test journeys."""
    from journeynet.model.baselines import binary_metrics
    from journeynet.synthetic.oracle import journey_probabilities

    idx = trained.splits["test"]
    p = journey_probabilities(inputs.truth, inputs.touchpoints, inputs.spend, trained.journeys, idx, lookback_days)
    best = binary_metrics(trained.journeys.label[idx].astype(int), p)
    out = {f"best_achievable_{k}": v for k, v in best.items()}
    out["auc_gap_to_best"] = best["auc"] - trained.metrics["test_auc"]
    log.info("best achievable test AUC %.4f (model %.4f)", best["auc"], trained.metrics["test_auc"])
    return out


def _sample(n: int, max_n: int, seed: int) -> np.ndarray:
    if n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_n, replace=False))


def write_outputs(stage: OutputStage, cfg: DictConfig, inputs: Any, trained: TrainedModel,
                  table: pd.DataFrame, extras: dict[str, Any], figures: dict[str, Any],
                  inputs_copied: bool = False) -> None:
    """Write the contract's files (and the run's own) into the staging area.

    ``inputs_copied``: a generated world's inputs and truth were staged by the second process.
    """
    metrics = dict(trained.metrics)
    if inputs.unmatched is not None and len(inputs.unmatched):
        metrics["paid_units_without_spend"] = inputs.unmatched.to_dict(orient="records")
    if inputs.truth is not None:
        from journeynet.attribution.evaluation import truth_report

        metrics["truth"] = truth_report(inputs.truth, table, inputs.touchpoints)
        if not inputs_copied:
            write_input_copies(inputs, {name: stage.path_for(name) for name in INPUT_COPIES})
    if extras:
        metrics["funnel"] = extras["diagnostics"]
        stage.write_json("funnel_params.json", extras["params"].to_dict())
        stage.write_csv("response_points.csv", extras["points"])
        stage.write_csv("attribution_channels.csv", extras["channels"])
        stage.write_csv("daily_units.csv", extras["daily"])
        stage.write_csv("response_curves.csv", extras["curves"])
        if extras["draws"] is not None:
            stage.write_csv("response_draws.csv", extras["draws"])
        metrics["model_checks"] = extras["checks"]
        stage.write_csv("model_checks.csv", extras["checks_table"])
        if extras.get("experiments") is not None:
            metrics["experiments"] = extras["experiments"]
            metrics["experiment_conflicts"] = [e["name"] for e in extras["experiments"] if e["conflict"]]
        if extras.get("suggested") is not None and len(extras["suggested"]):
            stage.write_csv("experiments_suggested.csv", extras["suggested"])
    elif inputs.spend is not None:
        log.warning("response curves need the funnel's effects (attribution.engine=funnel); "
                    "response_curves.csv not written")
    stage.write_csv("attribution.csv", table)
    stage.write_json("metrics.json", metrics)
    trained.vocab.save(stage.path_for("vocab.json"))
    if cfg.data.get("test_touchpoints"):
        test = trained.journeys.subset(trained.splits["test"])
        stage.write_csv("predictions.csv", pd.DataFrame({"customer_id": test.customer_id,
                                                         "journey": test.journey, "p": trained.test_p}))
    if trained.best_ckpt:
        shutil.copyfile(trained.best_ckpt, stage.path_for("model.ckpt"))
    for tag, fig in figures.items():
        fig.savefig(stage.path_for(tag.split("/")[1] + ".png"), dpi=110, bbox_inches="tight")


def make_figures(trained: TrainedModel, table: pd.DataFrame, checks: tuple | None = None) -> dict[str, Any]:
    """The run's figures by TensorBoard tag (attention by position, PR curves, opener/closer)."""
    from journeynet.model.predict import attention_by_position
    from journeynet.plots import plot_attention_by_position, plot_opener_closer, plot_pr_curves

    test = trained.journeys.subset(trained.splits["test"])
    y = test.label.astype(int)
    figs = {
        "model/attention_by_position": plot_attention_by_position(attention_by_position(test, trained.test_attention)),
        "model/pr_curves": plot_pr_curves({"attention-LSTM": (y, trained.test_p),
                                           **{k: (y, v) for k, v in trained.baseline_p.items()}}),
        "attribution/opener_closer": plot_opener_closer(table),
    }
    if checks is not None:
        from journeynet.attribution.figures import plot_model_checks

        figs["attribution/model_checks"] = plot_model_checks(*checks)
    return {k: v for k, v in figs.items() if v is not None}


def training_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The settings a sweep compares runs by: the net, the optimizer, batch size, epochs, seed, data."""
    optimizer = cfg.module.get("optimizer") or {}
    return {"model": OmegaConf.to_container(cfg.model, resolve=True), "lr": optimizer.get("lr"),
            "weight_decay": optimizer.get("weight_decay"), "batch_size": cfg.data.batch_size,
            "max_epochs": cfg.trainer.get("max_epochs"), "seed": cfg.seed, "data_source": cfg.data.source}


def _log_tensorboard(loggers: list[Any], cfg: DictConfig, trained: TrainedModel, figures: dict[str, Any]) -> None:
    """Hparams with the final metrics, the baselines' metrics, and the figures."""
    flat = {k: v for k, v in trained.metrics.items() if isinstance(v, float | int) and not isinstance(v, bool)}
    for lg in loggers:
        if not hasattr(lg, "log_hyperparams"):
            continue
        hp = training_hparams(cfg)
        lg.log_hyperparams(hp, metrics={f"final/{k}": v for k, v in flat.items()})
        exp = getattr(lg, "experiment", None)
        if exp is None or not hasattr(exp, "add_figure"):
            continue
        for name, m in trained.metrics.get("baselines", {}).items():
            for key, value in m.items():
                exp.add_scalar(f"baselines/{key}_{name}", value)
        for tag, fig in figures.items():
            exp.add_figure(tag, fig, close=False)
