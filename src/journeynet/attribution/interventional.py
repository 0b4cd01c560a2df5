"""The interventional half of ``train.py``'s attribution: fit the engine (cached), then ask it questions.

Returns the per-unit effects with 90% intervals, channel-level effects, the response
rollouts (for the fitted model and for each of its draws) and the model checks. The fit
depends only on the data and its own settings, so it is cached by a fingerprint of both:
a sweep over the LSTM's settings or a resume reuses it (``attribution.refit=true`` forces
a new fit).

With lift-test experiments (``data.experiments``) the engine is fitted twice: on the
journeys alone (kept as ``removal_effect_uncalibrated``, and its draws give the model's
side of the conflict check) and with the experiments in its objective
(:mod:`journeynet.causal.calibration`), whose effects are the table's.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from journeynet.attribution.experiments import suggest_experiments
from journeynet.attribution.tables import funnel_table
from journeynet.causal.calibration import ExperimentPenalty, experiment_report, resolve_experiments
from journeynet.causal.checks import model_checks, observed_routes
from journeynet.causal.data import FunnelData, build_funnel_data
from journeynet.causal.engine import EngineResult, fit_engine
from journeynet.causal.fit import FunnelFitConfig, Penalty
from journeynet.causal.funnel import FunnelParams
from journeynet.causal.interventions import channel_effects, response_points, unit_effects
from journeynet.data.touchsource import TouchSource, as_source

log = logging.getLogger(__name__)


def interventional(fit_cfg: FunnelFitConfig, touchpoints: pd.DataFrame | TouchSource, spend: pd.DataFrame,
                   multiples: tuple[float, ...], cache_dir: str | None = None, refit: bool = False,
                   response_draws: int = 20,
                   experiments: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The funnel table (effects with intervals) and the engine's by-products for ``write_outputs``.

    ``touchpoints``: canonical rows, or a :class:`~journeynet.data.touchsource.TouchSource`
    (a streamed lake), which answers the same questions without the frame.
    ``experiments`` (a validated :func:`journeynet.data.experiments.load_experiments`
    frame) calibrates the fit; ``extras["experiments"]`` then lists each with the model's
    value before and after.
    """
    touchpoints = as_source(touchpoints)  # one source: a frame is counted once, not per question
    data = build_funnel_data(touchpoints, spend, fit_cfg.max_sequences, fit_cfg.seed)
    result = cached_engine(data, fit_cfg, touchpoints, spend, cache_dir, refit)
    uncalibrated, report = None, None
    if experiments is not None and len(experiments):
        tests = resolve_experiments(experiments, data.units, data.dates)
        uncalibrated = result
        salt = pd.util.hash_pandas_object(experiments.astype(str), index=False).to_numpy().tobytes()
        result = cached_engine(data, fit_cfg, touchpoints, spend, cache_dir, refit,
                               penalty=ExperimentPenalty(tests), salt=salt, backtest_of=uncalibrated)
        report = experiment_report(tests, data.spend, uncalibrated, result)
    params = result.params
    observed = float(touchpoints.conversions)
    table = funnel_table(params, data.spend, observed, result.draws)
    if uncalibrated is not None:
        table["removal_effect_uncalibrated"] = unit_effects(uncalibrated.params, data.spend)
    channels = channel_effects(params, data.spend)
    checks_table, checks = model_checks(result, data, observed_routes(touchpoints, data))
    points = response_points(params, data.spend, multiples)
    draw_points = [response_points(d, data.spend, multiples).assign(draw=i)
                   for i, d in enumerate(result.draws[:response_draws])]
    extras: dict[str, Any] = {
        "params": params, "diagnostics": result.diagnostics, "spend_matrix": data.spend, "dates": data.dates,
        "points": points, "draw_points": pd.concat(draw_points, ignore_index=True) if draw_points else None,
        "channels": pd.DataFrame({"channel": list(channels), "removal_effect": list(channels.values())}),
        "checks_table": checks_table, "checks": checks,
        "suggested": suggest_experiments(table, params, data.spend),
    }
    if report is not None:
        extras["experiments"] = report
    return table, extras


def cached_engine(data: FunnelData, cfg: FunnelFitConfig, touchpoints: pd.DataFrame | TouchSource, spend: pd.DataFrame,
                  cache_dir: str | None, refit: bool, penalty: Penalty | None = None,
                  salt: bytes = b"", backtest_of: EngineResult | None = None) -> EngineResult:
    """:func:`fit_engine`, reused from ``cache_dir`` when the data and settings are the same.

    ``salt`` identifies what ``penalty`` adds to the fit (the experiments' content);
    ``backtest_of`` lends its backtest fit (see :func:`fit_engine`).
    """
    if not cache_dir:
        return fit_engine(data, cfg, penalty=penalty, backtest_of=backtest_of)
    key = fingerprint(touchpoints, spend, cfg, salt)
    path = Path(cache_dir) / f"funnel-{key}.json"
    if path.exists() and not refit:
        log.info("funnel fit: reusing the cached fit %s (same data and attribution.funnel settings; "
                 "attribution.refit=true fits again)", path)
        return _load(path)
    result = fit_engine(data, cfg, penalty=penalty, backtest_of=backtest_of)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_dump(result)))
    tmp.replace(path)
    return result


def fingerprint(touchpoints: pd.DataFrame | TouchSource, spend: pd.DataFrame, cfg: FunnelFitConfig,
                salt: bytes = b"") -> str:
    """Hash of the inputs' content, the fit settings, ``salt`` and the engine's own source code.

    The touchpoints count by their rows' content, whatever their order (``TouchSource.digest``):
    a lake and the frame read from it share a cached fit.
    """
    h = hashlib.sha256(salt)
    h.update(as_source(touchpoints).digest.encode())
    h.update(pd.util.hash_pandas_object(spend, index=False).to_numpy().tobytes())
    h.update(",".join(map(str, spend.columns)).encode())
    # these change where the fits are computed, not their result (equal up to the order of sums)
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("processes", "interval_processes")}
    h.update(json.dumps(settings, sort_keys=True).encode())
    causal = Path(__file__).resolve().parents[1] / "causal"
    for src in sorted(causal.glob("*.py")):
        h.update(src.read_bytes())
    return h.hexdigest()[:20]


def _dump(result: EngineResult) -> dict[str, Any]:
    return {"params": result.params.to_dict(), "draws": [d.to_dict() for d in result.draws],
            "backtest": result.backtest.to_dict() if result.backtest is not None else None,
            "holdout_start": result.holdout_start, "diagnostics": result.diagnostics,
            "warm_state": result.warm_state}


def _load(path: Path) -> EngineResult:
    d = json.loads(path.read_text())
    return EngineResult(FunnelParams.from_dict(d["params"]), [FunnelParams.from_dict(x) for x in d["draws"]],
                        FunnelParams.from_dict(d["backtest"]) if d["backtest"] else None, d["holdout_start"],
                        {k: float(v) for k, v in d["diagnostics"].items()} | {"cached": 1.0}, d.get("warm_state"))

