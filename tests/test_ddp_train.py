"""``train.py`` under a multi-process trainer: rank 0 alone goes on after fit; a store is trained shard by shard.

The fast tests check the decisions (how many processes a trainer config starts, whether
a run trains per-rank shards, which rank continues after fit) and that the per-rank
datamodules split the store exactly as the single-process path does, and ``run_training``
stops after training on a rank other than 0 (``train_model`` stubbed), and such a rank,
started by Lightning's launcher, does not load the inputs (the environment gives the rank).
The slow test runs ``train.py trainer=ddp`` on two gloo processes (about 30-60 s on a busy
2-core box).
"""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import TINY, run_cli
from journeynet.data.engines import EngineSettings, build_journey_store
from journeynet.data.inputs import load_touchpoints
from journeynet.data.store import read_manifest
from journeynet.errors import InputError
from journeynet.model.shards import (
    StoreForRun,
    deal_shards,
    journeys_for_run,
    launched_rank,
    shards_per_rank,
    store_for_launched_rank,
    trainer_processes,
)
from journeynet.model.training import continues_after_fit
from journeynet.preflight import SettingError
from test_partition import data_cfg, touchpoints, write_lake

DDP = {"strategy": "ddp", "accelerator": "cpu", "devices": 2, "num_nodes": 1}


@pytest.mark.parametrize(("trainer", "expected"), [
    ({"accelerator": "cpu", "devices": 1}, 1),
    ({"strategy": "auto", "accelerator": "cpu", "devices": 2}, 2),  # Lightning picks ddp for 2 devices
    ({"accelerator": "cpu", "devices": "2"}, 2),
    ({"strategy": "fsdp", "accelerator": "cpu", "devices": 2}, 1),  # not sharded here
    (DDP, 2),
    ({**DDP, "num_nodes": 3}, 6),
    ({**DDP, "devices": "0,1,2"}, 3),
    ({**DDP, "devices": [0, 1, 2, 3]}, 4),
    ({**DDP, "devices": "auto"}, 1),  # auto on CPU is one device, as Lightning counts it
    ({**DDP, "strategy": "ddp_spawn", "devices": "2"}, 2),
    ({**DDP, "strategy": {"_target_": "pytorch_lightning.strategies.DDPStrategy"}}, 2),
])
def test_trainer_processes(trainer, expected):
    assert trainer_processes(OmegaConf.create(trainer)) == expected


def _cfg(tmp_path, trainer, journeys="store", split="customer", engine="local", test_fraction=0.2,
         test_touchpoints=None):
    data = {"touchpoints": str(tmp_path / "tp"), "lookback_days": 30, "max_len": 50, "split": split,
            "val_fraction": 0.1, "test_fraction": test_fraction, "engine": engine, "partitions": 5, "workers": 1,
            "journeys": str(tmp_path / journeys) if journeys else None, "batch_size": 16, "num_workers": 0,
            "bucket": "mixed", "test_touchpoints": test_touchpoints}
    return OmegaConf.create({"seed": 3, "data": data, "trainer": trainer,
                             "paths": {"output_dir": str(tmp_path / "run")}})


def test_which_runs_train_per_rank_shards(tmp_path):
    assert shards_per_rank(_cfg(tmp_path, DDP))
    assert shards_per_rank(_cfg(tmp_path, DDP, journeys=None, engine="dask"))  # the engine builds a store too
    assert not shards_per_rank(_cfg(tmp_path, DDP, journeys=None))  # journeys in memory: Lightning's sampler
    assert not shards_per_rank(_cfg(tmp_path, {"accelerator": "cpu", "devices": 1}))
    assert not shards_per_rank(_cfg(tmp_path, {**DDP, "devices": 1}))
    assert shards_per_rank(_cfg(tmp_path, {"accelerator": "cpu", "devices": 2}))  # trainer=cpu trainer.devices=2
    with pytest.raises(SettingError, match=r"data\.split=time: .* 2 training processes .* use data\.split=customer"):
        shards_per_rank(_cfg(tmp_path, DDP, split="time"))
    assert not shards_per_rank(_cfg(tmp_path, {"accelerator": "cpu", "devices": 1}, split="time"))


def test_only_global_rank_zero_continues_after_fit():
    assert continues_after_fit(0)
    assert not any(continues_after_fit(r) for r in (1, 2, 7))


def test_a_rank_other_than_zero_stops_after_training_and_writes_nothing(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir

    from conftest import ROOT
    from journeynet import pipeline

    def rank_one_after_fit(*args, **kwargs):
        return None  # what train_model returns on a rank other than 0

    def must_not_run(*args, **kwargs):
        raise AssertionError("rank 1 went on after fit")

    monkeypatch.setattr(pipeline, "train_model", rank_one_after_fit)
    for step in ("attribute", "best_achievable", "write_outputs", "make_figures"):
        monkeypatch.setattr(pipeline, step, must_not_run)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, "data.synthetic.pool=1500", f"paths.output_dir={tmp_path}",
                                          "logger={}"])
    assert math.isnan(pipeline.run_training(cfg))
    assert [p.name for p in tmp_path.iterdir()] == []


RANK_VARS = ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "WORLD_SIZE", "RANK")


@pytest.mark.parametrize(("env", "trainer", "expected"), [
    ({}, DDP, 0),  # a plain run, and rank 0 before fit: the launcher sets nothing yet
    ({"LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "2"}, DDP, 0),  # rank 0 during fit
    ({"LOCAL_RANK": "1", "NODE_RANK": "0", "WORLD_SIZE": "2"}, DDP, 1),  # what Lightning's launcher gives rank 1
    ({"LOCAL_RANK": "1", "NODE_RANK": "2", "WORLD_SIZE": "12"}, {**DDP, "num_nodes": 3, "devices": 4}, 9),
    ({"LOCAL_RANK": "1", "GROUP_RANK": "1", "WORLD_SIZE": "4"}, DDP, 3),  # GROUP_RANK stands in for NODE_RANK
    ({"LOCAL_RANK": "1", "NODE_RANK": "1", "WORLD_SIZE": "6"}, {**DDP, "devices": "0,1,2", "num_nodes": 2}, 4),
    ({"LOCAL_RANK": "0", "RANK": "5", "GROUP_RANK": "2", "WORLD_SIZE": "8"}, DDP, 5),  # torchrun's global RANK
    ({"LOCAL_RANK": "1"}, DDP, 0),  # no WORLD_SIZE: not a launcher's process
])
def test_launched_rank_reads_the_launchers_environment(monkeypatch, env, trainer, expected):
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    assert launched_rank(OmegaConf.create(trainer), env) == expected
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert launched_rank(OmegaConf.create(trainer)) == expected  # os.environ by default


def _as_rank(monkeypatch, rank):
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    if rank is not None:
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        monkeypatch.setenv("NODE_RANK", "0")
        monkeypatch.setenv("WORLD_SIZE", "2")


def test_only_a_launched_rank_of_a_sharded_run_on_an_existing_store_skips_the_inputs(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, DDP)
    _as_rank(monkeypatch, 1)
    assert store_for_launched_rank(cfg) is None  # no store yet (processes started together): load as before
    lake = write_lake(touchpoints(60, seed=4), tmp_path / "tp", n_files=1)
    build_journey_store(data_cfg(lake), tmp_path / "store", settings=EngineSettings(partitions=5))
    vocab, deferred, splits = store_for_launched_rank(cfg)
    assert deferred == StoreForRun(tmp_path / "store", None, evaluates=False) and splits == {}
    with pytest.raises(RuntimeError, match="rank 0 alone reads the whole store"):
        deferred.read(cfg)
    assert store_for_launched_rank(_cfg(tmp_path, {"accelerator": "cpu", "devices": 1})) is None
    _as_rank(monkeypatch, None)
    assert store_for_launched_rank(cfg) is None  # rank 0 loads the inputs
    _as_rank(monkeypatch, 1)
    cfg.data.max_len = 20  # rank 0 stops on this before fit; a rank >= 1 checks it too
    with pytest.raises(InputError, match=r"was built with max_len=50, the config asks data.max_len=20"):
        store_for_launched_rank(cfg)


@pytest.mark.parametrize("held_out_test", [False, True])
def test_a_launched_rank_trains_on_the_store_without_loading_the_inputs(tmp_path, monkeypatch, held_out_test):
    from hydra import compose, initialize_config_dir

    from conftest import ROOT
    from journeynet import pipeline
    from journeynet.data.journeys import Vocab
    from journeynet.data.store import VOCAB

    lake = write_lake(touchpoints(120, seed=4), tmp_path / "tp", n_files=1)
    store, run_dir = tmp_path / "store", tmp_path / "run"
    build_journey_store(data_cfg(lake), store, settings=EngineSettings(partitions=5))
    # the held-out file need not exist: a rank >= 1 does not read it, only its path decides the split
    held = [f"data.test_touchpoints={tmp_path / 'missing.csv'}"] if held_out_test else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, "trainer=ddp", "trainer.accelerator=cpu", f"data.journeys={store}",
                                          "data.lookback_days=30", "data.max_len=50", "data.test_fraction=0.25",
                                          f"paths.output_dir={run_dir}", "logger={}", *held])
    seen = {}

    def no_inputs(*args, **kwargs):
        raise AssertionError("a rank >= 1 loaded the inputs")

    def rank_one_trains(cfg, vocab, journeys, splits, *args, **kwargs):
        seen.update(vocab=vocab, journeys=journeys, splits=splits, dm=journeys.datamodule(cfg))
        return None  # what train_model returns on a rank other than 0

    monkeypatch.setattr(pipeline, "load_inputs", no_inputs)
    monkeypatch.setattr(pipeline, "train_model", rank_one_trains)
    _as_rank(monkeypatch, 1)
    assert math.isnan(pipeline.run_training(cfg))
    assert seen["vocab"] == Vocab.load(store / VOCAB) and seen["splits"] == {}
    assert seen["journeys"] == StoreForRun(store, None, evaluates=False)
    fraction = 0.0 if held_out_test else 0.25  # as rank 0 splits its customers
    assert seen["journeys"].test_fraction(cfg) == seen["dm"].hparams.test_fraction == fraction
    assert sorted(p.name for p in run_dir.iterdir()) == []  # nothing written, no store built in the run dir

    # rank 0 (no launcher variables) loads them, as before
    _as_rank(monkeypatch, None)
    with pytest.raises(AssertionError, match="loaded the inputs"):
        pipeline.run_training(cfg)


def test_the_test_fraction_follows_the_config_not_a_loaded_frame(tmp_path):
    frame = object()
    cfg = _cfg(tmp_path, DDP, test_touchpoints=str(tmp_path / "test.csv"))
    assert StoreForRun(tmp_path, frame).test_fraction(cfg) == StoreForRun(tmp_path).test_fraction(cfg) == 0.0
    cfg = _cfg(tmp_path, DDP, test_fraction=0.3)
    assert StoreForRun(tmp_path).test_fraction(cfg) == 0.3
    with pytest.raises(ValueError, match="held-out test frame was given"):
        StoreForRun(tmp_path, frame).read(cfg)  # a frame the config does not name would be dropped silently


def _keys(journeys, idx):
    return sorted(f"{journeys.customer_id[i]}#{journeys.journey[i]}" for i in idx)


@pytest.mark.parametrize("held_out_test", [False, True])
def test_ranks_split_the_store_as_one_process_does(tmp_path, held_out_test):
    lake = write_lake(touchpoints(200, seed=4), tmp_path / "tp", n_files=2)
    build_journey_store(data_cfg(lake), tmp_path / "store", settings=EngineSettings(partitions=5))
    test_tp = load_touchpoints(write_lake(touchpoints(40, seed=9), tmp_path / "test", n_files=1)) \
        if held_out_test else None
    inputs = SimpleNamespace(touchpoints=load_touchpoints(lake), spend=None, test_touchpoints=test_tp)
    held_out = str(tmp_path / "test") if held_out_test else None

    one_vocab, one, one_splits = journeys_for_run(_cfg(tmp_path, {"accelerator": "cpu", "devices": 1},
                                                       test_touchpoints=held_out), inputs)
    cfg = _cfg(tmp_path, DDP, test_touchpoints=held_out)
    vocab, deferred, splits = journeys_for_run(cfg, inputs)
    # nothing read but the vocabulary before fit
    assert isinstance(deferred, StoreForRun) and splits == {} and vocab == one_vocab

    dms = [deferred.datamodule(cfg) for _ in range(2)]
    for r, dm in enumerate(dms):
        dm.rank, dm.world_size = r, 2
        assert dm.hparams.bucket == "mixed" and dm.hparams.seed == 3 and isinstance(dm.hparams.store, str)
        dm.setup()
    assert sorted(dms[0].shards + dms[1].shards) == list(range(5)) and not set(dms[0].shards) & set(dms[1].shards)
    for k in ("train", "val"):
        per_rank = [_keys(dm.journeys, dm.splits[k]) for dm in dms]
        assert sorted(per_rank[0] + per_rank[1]) == _keys(one, one_splits[k]), k
        assert all(0 < len(p) < len(one_splits[k]) for p in per_rank), k
    n_test = sum(len(dm.splits["test"]) for dm in dms)
    assert n_test == (0 if held_out_test else len(one_splits["test"]))

    # what rank 0 reads after fit is what the single-process path reads
    _, whole, whole_splits = deferred.read(cfg, vocab)
    assert np.array_equal(whole.channel, one.channel) and np.array_equal(whole.offsets, one.offsets)
    assert all(np.array_equal(whole_splits[k], one_splits[k]) for k in ("train", "val", "test"))


RANK_LINE = re.compile(r"rank (\d+) of (\d+): shards \[([\d, ]*)\], (\d+) journeys \((\d+) train")


@pytest.mark.slow
def test_ddp_train_on_a_store_trains_per_rank_shards_and_writes_once(tmp_path):
    store, run_dir = tmp_path / "store", tmp_path / "run"
    proc = run_cli("train.py", *TINY, "trainer=ddp", "trainer.accelerator=cpu", f"data.journeys={store}",
                   "data.partitions=5", f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = {p.name: p.read_text() for p in run_dir.glob("*.log")}
    assert set(logs) == {"train.log", "train_ddp_process_1.log"}
    text = "\n".join(logs.values())

    # outputs written once, by rank 0, and they are the files in the run dir
    wrote = re.findall(r"wrote (\d+) output files", text)
    assert len(wrote) == 1 and "wrote" in logs["train.log"]
    files = {p.name for p in run_dir.iterdir() if p.is_file() and p.suffix != ".log"}
    assert int(wrote[0]) == len(files) >= 15
    assert {"metrics.json", "attribution.csv", "model.ckpt", "vocab.json"} <= files
    assert len(re.findall(r"\] - test AUC ", text)) == 1 and len(re.findall(r"funnel fit 1/", text)) == 1

    # each process logged its own rank's shards, once; together every shard once, as dealt
    manifest = read_manifest(store)
    ranks = {}
    for name, rank in (("train.log", 0), ("train_ddp_process_1.log", 1)):
        lines = RANK_LINE.findall(logs[name])
        assert len(lines) == 1 and int(lines[0][0]) == rank and int(lines[0][1]) == 2, (name, lines)
        ranks[rank] = lines[0]
    shards = {r: [int(s) for s in line[2].split(",")] for r, line in ranks.items()}
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(len(manifest["shards"]))) == list(range(5))
    assert [shards[0], shards[1]] == deal_shards(manifest["shards"], 2)
    for r, line in ranks.items():
        assert int(line[3]) == sum(manifest["shards"][i]["journeys"] for i in shards[r])

    # rank 0 alone generated the world (and built the store); rank 1 read only the store's vocabulary and shards
    assert len(re.findall(r"generated \d+ touchpoints", logs["train.log"])) == 1
    assert not re.search(r"generated \d+ touchpoints", logs["train_ddp_process_1.log"])
    assert "journeys from the store" in logs["train.log"]
    assert "journeys from the store" not in logs["train_ddp_process_1.log"]
    assert re.search(r"rank 1: trains on its shards of the store .*; the inputs are loaded by rank 0 only",
                     logs["train_ddp_process_1.log"])

    # rank 0's whole-store evaluation uses the union of the ranks' training splits
    n_train = sum(int(line[4]) for line in ranks.values())
    assert re.search(rf"baseline logistic fit on {n_train} journeys", logs["train.log"])

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert math.isfinite(metrics["test_auc"]) and 0.0 < metrics["test_auc"] < 1.0
    assert len((run_dir / "attribution.csv").read_text().splitlines()) > 2
