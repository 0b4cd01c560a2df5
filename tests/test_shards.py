"""Under DDP each rank loads only its shards; together the ranks hold every journey once.

The gloo test is slow (two fresh interpreters importing torch and Lightning, ~70 s on a
busy 2-core box); the in-process test checks the same dealing and splits in seconds.

Two gloo processes train an attention-LSTM wrapped in DistributedDataParallel on their
own shards (the padded batch counts keep the gradient all-reduce in step); the test
checks what each rank loaded and split against one process reading the whole store.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from journeynet.data.engines import EngineSettings, build_journey_store
from journeynet.data.partition import hash_split
from journeynet.data.store import read_manifest, read_store
from journeynet.model.shards import ShardedJourneyDataModule, deal_shards
from test_partition import data_cfg, touchpoints, write_lake

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import json, os, sys
    import numpy as np, torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from journeynet.model.net import AttentionLSTM
    from journeynet.model.shards import ShardedJourneyDataModule

    store, out = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    dm = ShardedJourneyDataModule(store, val_fraction=0.1, test_fraction=0.2, batch_size=32, seed=0)
    dm.setup()
    torch.manual_seed(0)
    net = AttentionLSTM(dm.vocab.n_channels, dm.vocab.n_campaigns, hidden_size=8, dropout=0.0)
    model = DDP(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    steps, seen_train = 0, set()
    for batch in dm.train_dataloader():
        out_ = model(batch["channel"], batch["campaign"], batch["feats"], batch["lengths"])
        logits = out_["logits"] if isinstance(out_, dict) else out_[0]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch["label"].float())
        opt.zero_grad(); loss.backward(); opt.step(); steps += 1
        seen_train.update(batch["index"].tolist())
    checksum = torch.tensor([float(sum(p.double().sum() for p in net.parameters()))], dtype=torch.float64)
    sums = [torch.zeros(1, dtype=torch.float64) for _ in range(world)]
    dist.all_gather(sums, checksum)
    cid = dm.journeys.customer_id
    seen_val = [int(i) for b in dm.val_dataloader() for i in b["index"].tolist()]
    res = {"rank": rank, "world": world, "shards": dm.shards, "n_journeys": len(dm.journeys),
           "customers": sorted(set(cid.tolist())),
           "splits": {k: sorted(f"{cid[i]}#{dm.journeys.journey[i]}" for i in v) for k, v in dm.splits.items()},
           "steps": steps, "seen_train": len(seen_train), "n_train": len(dm.splits["train"]),
           "seen_val": len(seen_val), "n_val": len(dm.splits["val"]),
           "param_sums": [float(s) for s in sums]}
    with open(f"{out}/rank{rank}_of{world}.json", "w") as fh:
        json.dump(res, fh)
    dist.destroy_process_group()
''')


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(tmp_path, store, world):
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    port = str(_free_port())
    procs = []
    for rank in range(world):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank), WORLD_SIZE=str(world),
                   LOCAL_RANK=str(rank), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, str(script), str(store), str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    return [json.loads((tmp_path / f"rank{r}_of{world}.json").read_text()) for r in range(world)]


def test_deal_is_balanced_and_complete():
    shards = [{"journeys": n} for n in (50, 10, 40, 30, 20, 0)]
    dealt = deal_shards(shards, 2)
    assert sorted(i for d in dealt for i in d) == list(range(6))
    assert [sum(shards[i]["journeys"] for i in d) for d in dealt] == [80, 70]
    assert deal_shards(shards, 1) == [list(range(6))]
    assert deal_shards(shards, 2) == dealt  # deterministic


def test_ranks_in_one_process_split_the_store_between_them(tmp_path):
    lake = write_lake(touchpoints(200, seed=3), tmp_path / "tp", n_files=2)
    store = tmp_path / "store"
    build_journey_store(data_cfg(lake), store, settings=EngineSettings(partitions=5))
    _, everything = read_store(store)
    keys = lambda j, idx: {f"{j.customer_id[i]}#{j.journey[i]}" for i in idx}  # noqa: E731
    for world in (1, 2, 3):
        dms = [ShardedJourneyDataModule(store, 0.1, 0.2, batch_size=16, rank=r, world_size=world) for r in range(world)]
        for k, idx in hash_split(everything, 0.1, 0.2, seed=0).items():
            parts = [keys(dm.journeys, dm.splits[k]) for dm in dms]
            assert sum(len(p) for p in parts) == len(set().union(*parts)) == len(idx), (world, k)
            assert set().union(*parts) == keys(everything, idx), (world, k)
        if world > 1:
            assert all(len(dm.journeys) < len(everything) for dm in dms)


@pytest.mark.slow
def test_two_gloo_ranks_each_load_only_their_shards(tmp_path):
    lake = write_lake(touchpoints(300, seed=2), tmp_path / "tp", n_files=2)
    store = tmp_path / "store"
    build_journey_store(data_cfg(lake), store, settings=EngineSettings(partitions=6))
    manifest = read_manifest(store)
    _, everything = read_store(store)
    ranks = _run(tmp_path, store, 2)

    # each rank read its dealt shards only, and no rank holds all journeys
    for r in ranks:
        assert r["shards"] == deal_shards(manifest["shards"], 2)[r["rank"]]
        assert r["n_journeys"] == sum(manifest["shards"][i]["journeys"] for i in r["shards"]) < len(everything)
    # together: every customer once
    a, b = (set(r["customers"]) for r in ranks)
    assert not a & b and a | b == set(everything.customer_id.tolist())
    # the splits are those of one process on the whole store, whatever the number of ranks
    whole = hash_split(everything, 0.1, 0.2, seed=0)
    for k, idx in whole.items():
        expect = sorted(f"{everything.customer_id[i]}#{everything.journey[i]}" for i in idx)
        assert sorted(ranks[0]["splits"][k] + ranks[1]["splits"][k]) == expect, k
    # equal step counts (padded), every own training journey seen, models in sync after DDP steps
    assert ranks[0]["steps"] == ranks[1]["steps"] == max(-(-r["n_train"] // 32) for r in ranks)
    assert all(r["seen_train"] == r["n_train"] and r["seen_val"] == r["n_val"] for r in ranks)
    assert ranks[0]["param_sums"][0] == ranks[0]["param_sums"][1] == ranks[1]["param_sums"][0]
    assert np.isfinite(ranks[0]["param_sums"][0])


def test_train_reads_journeys_from_a_store_and_checks_its_settings(tmp_path):
    from types import SimpleNamespace

    import pytest
    from omegaconf import OmegaConf

    from journeynet.data.inputs import load_touchpoints
    from journeynet.errors import InputError
    from journeynet.model.shards import journeys_for_run

    lake = write_lake(touchpoints(150, seed=5), tmp_path / "tp", n_files=2)
    data = {"touchpoints": str(lake), "lookback_days": 30, "max_len": 50, "split": "customer", "val_fraction": 0.1,
            "test_fraction": 0.2, "engine": "local", "partitions": 3, "workers": 1, "journeys": str(tmp_path / "s")}
    cfg = OmegaConf.create({"seed": 0, "data": data, "paths": {"output_dir": str(tmp_path / "run")}})
    inputs = SimpleNamespace(touchpoints=load_touchpoints(lake), spend=None, test_touchpoints=None)
    vocab, journeys, splits = journeys_for_run(cfg, inputs)
    assert len(read_manifest(tmp_path / "s")["shards"]) == 3
    assert splits.keys() == {"train", "val", "test"} and sum(len(v) for v in splits.values()) == len(journeys)
    again = journeys_for_run(cfg, inputs)  # reused, not rebuilt: same arrays
    assert np.array_equal(again[1].channel, journeys.channel) and again[0] == vocab
    cfg.data.max_len = 20
    with pytest.raises(InputError, match=r"was built with max_len=50, the config asks data.max_len=20"):
        journeys_for_run(cfg, inputs)
