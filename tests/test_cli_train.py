"""train.py as a user runs it: ordinary switches work, and user errors are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import ROOT, TINY
from test_readme import run_entry

SMALL = ["data.synthetic.pool=1500", "data.synthetic.days=28"]


def compose_train(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("train", overrides=[*TINY, "+trainer.fast_dev_run=true", f"paths.output_dir={tmp_path}",
                                           *overrides])


def test_a_value_error_is_one_line_and_its_traceback_stays_in_the_run_log(tmp_path: Path, capsys) -> None:
    assert run_entry("train.py", [*SMALL, "data.split=foo", f"hydra.run.dir={tmp_path}"]) == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    assert out.err.strip().splitlines() == ["error: data.split must be 'customer' or 'time', got 'foo'"]
    log = (tmp_path / "train.log").read_text()
    assert "Traceback" in log and "data.split must be 'customer' or 'time'" in log


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_gpu_trainer_without_cuda_says_use_cpu(tmp_path: Path, capsys) -> None:
    assert run_entry("train.py", [*SMALL, "trainer=gpu", f"hydra.run.dir={tmp_path}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: trainer.accelerator=gpu needs CUDA, which this machine does not have "
        "(torch.cuda.is_available() is False): use trainer=cpu"]


def test_resuming_with_another_hidden_size_names_the_setting(tiny_run: Path, tmp_path: Path, capsys) -> None:
    ckpt = tiny_run / "checkpoints" / "last.ckpt"
    assert run_entry("train.py", [*TINY, "model.hidden_size=24", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path}"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: ckpt_path={ckpt} was trained with model.hidden_size=16 (this run: 24): resume with the "
        "checkpoint's settings and data, or train without ckpt_path"]
    assert not (tmp_path / "metrics.json").exists()


def test_engine_none_reports_the_truth_for_the_views_it_computed(tmp_path: Path) -> None:
    from journeynet.pipeline import run_training

    run_training(compose_train(tmp_path, "attribution.engine=none"))
    truth = json.loads((tmp_path / "metrics.json").read_text())["truth"]
    assert "removal_effect" not in truth["tv_distance"] and "last_touch" in truth["tv_distance"]
    assert truth["roles"] == {"checked": False}
    table = pd.read_csv(tmp_path / "attribution.csv")
    assert table[["attributed_conversions", "removal_effect"]].isna().all().all()
    assert (table["note"] == "not computed: attribution.engine=none; the classic and attention columns "
                             "are computed").all()


def test_journeys_only_run_reports_classic_views_of_declared_paid_channels(tmp_path: Path, caplog) -> None:
    from journeynet.data.inputs import load_inputs
    from journeynet.pipeline import run_training

    cfg = compose_train(tmp_path)
    tp = load_inputs(cfg.data).touchpoints
    path = tmp_path / "tp.parquet"
    tp.to_parquet(path)
    out = tmp_path / "run"
    with caplog.at_level("WARNING"):
        run_training(compose_train(out, f"data.touchpoints={path}", "data.paid_channels=[google_ads,meta_ads]"))
    table = pd.read_csv(out / "attribution.csv", keep_default_na=False, na_values=[""])
    paid = table[table["paid"]]
    assert set(paid["channel"]) == {"google_ads", "meta_ads"}
    assert paid["last_touch"].sum() > 0 and paid["linear"].sum() > 0
    # "not computed" is an empty cell with its reason, never 0.0, for paid and unpaid rows alike
    assert table[["attributed_conversions", "removal_effect", "opener_score"]].isna().all().all()
    assert table["note"].str.startswith("no spend data: interventional effects need spend").all()
    assert ("no spend data: attribution.csv gives the classic and attention views of the paid channels "
            "google_ads, meta_ads") in caplog.text
    assert not (out / "response_curves.csv").exists()
    assert np.isfinite(paid["removal_effect_naive"]).all()


def test_a_sweep_ends_naming_its_best_trial(tmp_path: Path, caplog) -> None:
    from omegaconf import OmegaConf

    from journeynet.sweep import BestTrialCallback

    for trial, (auroc, size) in enumerate([(0.71, 32), (0.78, 64), (float("nan"), 128)]):
        (tmp_path / str(trial) / ".hydra").mkdir(parents=True)
        (tmp_path / str(trial) / "metrics.json").write_text(json.dumps({"val_auroc": auroc}).replace("NaN", "null"))
        (tmp_path / str(trial) / ".hydra" / "overrides.yaml").write_text(f"- model.hidden_size={size}\n")
    config = OmegaConf.create({"optimized_metric": "val/auroc", "hydra": {"sweep": {"dir": str(tmp_path)}}})
    with caplog.at_level("INFO", logger="journeynet.sweep"):
        BestTrialCallback().on_multirun_end(config)
    best = json.loads((tmp_path / "best_trial.json").read_text())
    assert best["best"]["trial"] == "1" and best["best"]["overrides"] == ["model.hidden_size=64"]
    assert len(best["trials"]) == 2  # the trial without a finite metric is not ranked
    assert "sweep: best trial 1 (model.hidden_size=64): val/auroc 0.7800 of 2 trials" in caplog.text


def test_tensorboard_hparams_carry_the_training_settings(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from journeynet.pipeline import _log_tensorboard

    logged = {}

    class Recorder:
        def log_hyperparams(self, params, metrics=None):
            logged.update(params=params, metrics=metrics)

    cfg = compose_train(tmp_path, "module.optimizer.lr=0.002", "module.optimizer.weight_decay=0.05",
                        "data.batch_size=128", "trainer.max_epochs=7")
    _log_tensorboard([Recorder()], cfg, SimpleNamespace(metrics={"test_auc": 0.7, "verdict": "x"}), {})
    params = logged["params"]
    assert (params["lr"], params["weight_decay"], params["batch_size"], params["max_epochs"]) == (0.002, 0.05, 128, 7)
    assert params["model"]["hidden_size"] == 16 and logged["metrics"] == {"final/test_auc": 0.7}


def test_map_settings_take_new_keys_with_plus_as_documented() -> None:
    from hydra.errors import ConfigCompositionException

    readme = (ROOT / "README.md").read_text()
    assert "'+data.channel_map={Goog: google_ads}'" in readme
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["data=netelixir", "+data.channel_map={TikTok: tiktok_ads}"])
        assert cfg.data.channel_map["TikTok"] == "tiktok_ads" and cfg.data.channel_map["Google"] == "google_ads"
        cfg = compose("train", overrides=["data=csv", "+data.channel_map.Goog=google_ads"])
        assert dict(cfg.data.channel_map) == {"Goog": "google_ads"}
        with pytest.raises(ConfigCompositionException, match=r"\+data\.channel_map"):
            compose("train", overrides=["data=csv", "data.channel_map={Goog: google_ads}"])
