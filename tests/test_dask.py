"""The Dask engine writes the store the local engine writes, to the byte."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from journeynet.data.engines import EngineSettings, build_journey_store  # noqa: E402
from journeynet.data.partition import hash_split  # noqa: E402
from journeynet.data.store import read_manifest, read_store  # noqa: E402
from test_partition import data_cfg, digest, touchpoints, write_lake  # noqa: E402


def test_dask_local_cluster_matches_local_engine(tmp_path):
    raw = touchpoints(300, seed=1)
    lake = write_lake(raw, tmp_path / "tp", n_files=3)
    spend = pd.DataFrame({"date": pd.to_datetime(["2024-01-01"]), "channel": ["meta_ads"],
                          "campaign_type": ["social"], "spend": [10.0]})
    cfg = data_cfg(lake, start="2024-01-15", end="2024-03-01")
    local = build_journey_store(cfg, tmp_path / "local", spend, EngineSettings(partitions=6))
    dask = build_journey_store(cfg, tmp_path / "dask", spend,
                               EngineSettings(engine="dask", partitions=6, workers=2, dask_processes=False))
    assert local == {**dask}
    # the date range keeps fewer rows than the files hold
    assert 0 < local["rows"] < len(raw.drop_duplicates())
    assert (tmp_path / "local/vocab.json").read_bytes() == (tmp_path / "dask/vocab.json").read_bytes()
    # the spend's blank-campaign join ran on every chunk: meta_ads touches became social
    vocab, j_local = read_store(tmp_path / "local")
    assert ("meta_ads", "social") in vocab.units and ("meta_ads", "") not in vocab.units
    _, j_dask = read_store(tmp_path / "dask")
    assert digest(j_local) == digest(j_dask)
    for p in range(6):  # shard by shard too
        assert digest(read_store(tmp_path / "local", [p])[1]) == digest(read_store(tmp_path / "dask", [p])[1]), p
    a, b = hash_split(j_local, 0.1, 0.2, seed=0), hash_split(j_dask, 0.1, 0.2, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert read_manifest(tmp_path / "dask")["shards"] == read_manifest(tmp_path / "local")["shards"]
