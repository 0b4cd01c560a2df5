"""JourneyModule + JourneyDataModule: Lightning runs, checkpoints, determinism, configs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning_fabric.utilities.distributed import DistributedSamplerWrapper

from journeynet.model.datamodule import JourneyDataModule, LengthBucketSampler
from journeynet.model.module import JourneyModule
from journeynet.model.net import AttentionLSTM
from journeynet.model.predict import predict_proba
from test_model import N_CAMPAIGNS, N_CHANNELS, make_journeys

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture(scope="module")
def data() -> tuple[object, dict[str, np.ndarray]]:
    j = make_journeys(n=300, seed=1)
    idx = np.random.default_rng(0).permutation(len(j))
    return j, {"train": idx[:200], "val": idx[200:250], "test": idx[250:]}


def make_module(**kw: object) -> JourneyModule:
    net = AttentionLSTM(N_CHANNELS, N_CAMPAIGNS, hidden_size=8, attention_dim=4)
    return JourneyModule(net, partial(torch.optim.AdamW, lr=1e-2), **kw)


def trainer(tmp_path: Path, **kw: object) -> pl.Trainer:
    base = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=tmp_path)
    return pl.Trainer(**{**base, **kw})


def test_fast_dev_run(tmp_path: Path, data: tuple) -> None:
    j, splits = data
    dm = JourneyDataModule(j, splits, batch_size=64)
    module = make_module(pos_weight=2.0)
    t = trainer(tmp_path, fast_dev_run=True)
    t.fit(module, dm)
    assert {"train/loss", "val/auroc", "val/ap", "val/logloss", "val/ece"} <= set(t.callback_metrics)
    t.test(module, dm)
    assert {"test/loss", "test/auroc", "test/ap", "test/logloss", "test/ece"} <= set(
        t.callback_metrics)
    preds = module.test_predictions
    assert set(preds) == {"index", "p", "label"} and np.all(np.diff(preds["index"]) > 0)


def fit_metrics(tmp_path: Path, data: tuple) -> dict[str, float]:
    j, splits = data
    pl.seed_everything(7, workers=True)
    module = make_module()
    t = trainer(tmp_path, max_epochs=2, deterministic=True, enable_checkpointing=False)
    t.fit(module, JourneyDataModule(j, splits, batch_size=32, seed=7))
    return {k: float(v) for k, v in t.callback_metrics.items()}


def test_same_seed_same_metrics(tmp_path: Path, data: tuple) -> None:
    a = fit_metrics(tmp_path / "a", data)
    b = fit_metrics(tmp_path / "b", data)
    assert {"train/loss", "val/loss", "val/auroc", "val/logloss", "val/ece", "val/ap"} <= set(a)
    assert a == b


def test_checkpoint_reload_predicts_identically(tmp_path: Path, data: tuple) -> None:
    j, splits = data
    module = make_module(scheduler=partial(torch.optim.lr_scheduler.ReduceLROnPlateau, patience=1))
    t = trainer(tmp_path, max_epochs=1, enable_checkpointing=False)
    t.fit(module, JourneyDataModule(j, splits, batch_size=64))
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    loaded = JourneyModule.load(path)
    assert loaded.hparams.net_kwargs == module.net.config
    p0, a0 = predict_proba(module.net, j)
    p1, a1 = predict_proba(loaded.net, j)
    np.testing.assert_array_equal(p0, p1)
    np.testing.assert_array_equal(a0, a1)
    # The checkpoint holds no pickled partials: resuming works with weights_only=True.
    assert isinstance(loaded.hparams.scheduler, dict)
    t2 = trainer(tmp_path, max_epochs=2, enable_checkpointing=False)
    t2.fit(make_module(), JourneyDataModule(j, splits, batch_size=64), ckpt_path=path,
           weights_only=True)
    assert t2.current_epoch == 2


def test_weight_average_is_what_validation_checkpoint_and_reload_score(tmp_path: Path, data: tuple) -> None:
    from journeynet.model.averaging import ExponentialWeightAverage

    j, splits = data
    ema = ExponentialWeightAverage(decay=0.9)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, monitor="val/logloss", mode="min")
    module = make_module()
    t = trainer(tmp_path, max_epochs=3, callbacks=[ema, ckpt])
    t.fit(module, JourneyDataModule(j, splits, batch_size=32))
    raw = torch.load(ckpt.best_model_path, weights_only=True)["current_model_state"]
    loaded = JourneyModule.load(ckpt.best_model_path)
    averaged = loaded.net.state_dict()
    assert any(not torch.equal(raw[f"net.{k}"], v) for k, v in averaged.items()), "checkpoint holds the average"
    # Validation judged the averaged weights: re-validating the reloaded net gives the logged log-loss.
    again = trainer(tmp_path / "v").validate(loaded, JourneyDataModule(j, splits, batch_size=32), verbose=False)
    assert again[0]["val/logloss"] == pytest.approx(float(ckpt.best_model_score), rel=1e-5)
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        ExponentialWeightAverage(decay=1.0)


@pytest.mark.parametrize("max_steps", [5, -1])
def test_cosine_rate_reaches_its_floor_when_the_step_budget_or_the_epochs_end_the_run(
        tmp_path: Path, data: tuple, max_steps: int) -> None:
    j, splits = data
    cosine = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=None, eta_min=1e-4)
    module = make_module(scheduler=cosine)
    t = trainer(tmp_path, max_epochs=3, max_steps=max_steps, enable_checkpointing=False)
    t.fit(module, JourneyDataModule(j, splits, batch_size=64))  # 200 training journeys: 4 batches an epoch
    steps = 5 if max_steps == 5 else 3 * 4
    assert t.global_step == steps
    scheduler = t.lr_scheduler_configs[0]
    assert scheduler.interval == "step" and scheduler.scheduler.T_max == steps
    assert t.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-4)


def test_the_step_budget_keeps_whole_epochs() -> None:
    from journeynet.model.training import epochs_within_budget

    assert epochs_within_budget(15, 115, 3000) == 15    # the default world: its 15 epochs
    assert epochs_within_budget(15, 1205, 3000) == 2    # 600k journeys: two whole epochs, not 2.5
    assert epochs_within_budget(15, 5000, 3000) == 1    # an epoch longer than the budget: one


def test_bucketing_reduces_padding_and_covers_every_journey(data: tuple) -> None:
    j, _ = data
    idx = np.arange(len(j))
    waste = {}
    for bucket in (False, True):
        s = LengthBucketSampler(idx, j.lengths, batch_size=16, shuffle=True, bucket=bucket)
        batches = list(s)
        assert np.array_equal(np.sort(np.concatenate(batches)), idx)
        waste[bucket] = sum(j.lengths[b].max() * len(b) - j.lengths[b].sum() for b in batches)
    assert waste[True] < 0.5 * waste[False]
    assert not np.array_equal(np.concatenate(list(s)), np.concatenate(batches)), "new epoch order"


def test_mixed_batches_mix_lengths_and_pad_at_most_to_the_cap() -> None:
    rng = np.random.default_rng(0)
    lengths = np.r_[rng.integers(3, 9, size=990), rng.integers(30, 64, size=10)]  # 1% long journeys
    idx = np.arange(len(lengths)) + 7  # indices need not start at 0
    s = LengthBucketSampler(idx, lengths, batch_size=50, shuffle=True, bucket="mixed")
    batches = list(s)
    assert np.array_equal(np.sort(np.concatenate(batches)), idx)
    assert len(s) == len(batches) == 21, "Lightning stops an epoch after len(sampler) batches"
    short = [lengths[b - 7] for b in batches if lengths[b - 7].max() <= s.mix_cap]
    assert s.mix_cap < 30 and sum(len(b) for b in short) == 990, "every short journey in a capped batch"
    assert all(len(np.unique(b)) >= 3 for b in short if len(b) >= 20), "batches mix lengths"
    bucketed = LengthBucketSampler(idx, lengths, batch_size=50, shuffle=True, bucket=True)
    assert np.mean([len(np.unique(lengths[b - 7])) for b in bucketed]) < 2, "length buckets hold one length"
    assert not np.array_equal(np.concatenate(list(s)), np.concatenate(batches)), "new epoch order"
    with pytest.raises(ValueError, match="bucket must be true, false or 'mixed'"):
        LengthBucketSampler(idx, lengths, batch_size=50, shuffle=True, bucket="sorted")


def test_sampler_shards_under_lightning_distributed_wrapper(data: tuple) -> None:
    j, _ = data
    idx = np.arange(len(j))
    shards = []
    for rank in (0, 1):
        s = LengthBucketSampler(idx, j.lengths, batch_size=16, shuffle=True, seed=3)
        shards.append(list(DistributedSamplerWrapper(s, num_replicas=2, rank=rank, shuffle=True)))
    assert len(shards[0]) == len(shards[1])  # equal steps per rank, no DDP hang
    seen = np.concatenate([b for shard in shards for b in shard])
    assert set(seen.tolist()) == set(idx.tolist())


def test_bad_splits_are_rejected(data: tuple) -> None:
    j, _ = data
    with pytest.raises(ValueError, match="split names must be among"):
        JourneyDataModule(j, {"training": np.arange(3)})
    with pytest.raises(ValueError, match="pos_weight must be > 0"):
        make_module(pos_weight=-1.0)


@pytest.mark.parametrize("trainer_name", ["default", "cpu", "gpu", "ddp"])
def test_every_config_group_instantiates(tmp_path: Path, trainer_name: str) -> None:
    overrides = [
        f"+trainer={trainer_name}", "+model=attention_lstm", "+module=default",
        "+callbacks=default", "+logger=tensorboard", f"+paths.output_dir={tmp_path}",
    ]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config_name=None, overrides=overrides)
    net = instantiate(cfg.model, n_channels=N_CHANNELS, n_campaigns=N_CAMPAIGNS)
    module = instantiate(cfg.module, net=net)
    assert isinstance(module, JourneyModule) and module.hparams.net_kwargs == net.config
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    logger = [instantiate(c) for c in cfg.logger.values()]
    assert callbacks[0].dirpath == str(tmp_path / "checkpoints")
    assert Path(logger[0].save_dir) == tmp_path / "tensorboard"
    assert cfg.trainer.max_epochs == 15
    if trainer_name in ("default", "cpu"):
        t = instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
        assert t.max_epochs == 15 and t.gradient_clip_val == 1.0
    else:
        trainer_cls = instantiate(cfg.trainer, _partial_=True).func
        assert trainer_cls is pl.Trainer  # gpu/ddp need devices this box may lack
    # hparams hold plain Hydra descriptions of the partials; they rebuild the same objects.
    opt = instantiate(module.hparams.optimizer)(params=net.parameters())
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["lr"] == cfg.module.optimizer.lr
    # the cosine decay's length is left to the module: the run's length in batches
    assert module.hparams.scheduler["T_max"] is None
