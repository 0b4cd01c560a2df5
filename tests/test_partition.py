"""Journeys per customer partition: the same journeys, vocabulary and split from every path."""

import hashlib
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from journeynet.data.engines import EngineSettings, build_journey_store
from journeynet.data.journeys import Journeys, Vocab, build_journeys
from journeynet.data.partition import (
    concat_journeys,
    customer_fraction,
    customer_partition,
    hash_split,
    partition_journeys,
    sort_by_customer,
)
from journeynet.data.store import read_manifest, read_store
from journeynet.errors import InputError

CHANNELS = [("Google Ads", "Search"), ("google_ads", "shopping"), ("Meta Ads", ""), ("email", ""), ("direct", "")]


def touchpoints(n_customers=400, seed=0):
    """Raw touchpoints with equal timestamps, exact duplicates and blank campaign types."""
    rng = np.random.default_rng(seed)
    n = n_customers * 4
    cust = rng.integers(0, n_customers, n)
    # hours on a coarse grid, so one customer often has two touches at the same time
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 6, n) * 4, unit="h")
    unit = rng.integers(0, len(CHANNELS), n)
    frame = pd.DataFrame({
        "customer_id": [f"c{c:05d}" for c in cust], "timestamp": t,
        "channel": [CHANNELS[u][0] for u in unit], "campaign_type": [CHANNELS[u][1] for u in unit],
        "converted": (rng.random(n) < 0.08).astype(int), "revenue": np.round(rng.gamma(2, 20, n), 2),
    })
    return pd.concat([frame, frame.iloc[:25]], ignore_index=True)  # 25 exact duplicates


def write_lake(frame, root, n_files=4, row_group_size=200):
    """Files by month (hive directories), the month's rows in file order, several row groups each."""
    root.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(frame)), n_files)
    for i, idx in enumerate(chunks):
        d = root / f"batch={i}"
        d.mkdir()
        frame.iloc[idx].to_parquet(d / "part-0.parquet", row_group_size=row_group_size, index=False)
    return root


def digest(j: Journeys) -> str:
    h = hashlib.sha256()
    for f in fields(Journeys):
        a = getattr(j, f.name)
        if a is None:  # an optional array not attached (history)
            h.update(f"{f.name}:None".encode())
            continue
        h.update(f"{f.name}:{a.dtype}:{a.shape}".encode())
        h.update(np.asarray(a, dtype=str).tobytes() if a.dtype == object else a.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    raw = touchpoints()
    return write_lake(raw, root / "touchpoints"), raw


def data_cfg(path, **kw):
    return {"touchpoints": str(path), "lookback_days": 30, "max_len": 50, **kw}


def test_partition_is_stable_and_spreads_customers():
    ids = [f"c{i}" for i in range(5000)]
    part = customer_partition(ids, 8)
    # a fixed hash: the same partition for the same id in any process, any run
    assert part[:5].tolist() == customer_partition(np.array(ids[:5], dtype=object), 8).tolist()
    assert customer_partition(pd.Series([123, "123"]), 8)[0] == customer_partition(["123"], 8)[0]
    counts = np.bincount(part, minlength=8)
    assert counts.min() > 0.8 * 5000 / 8 and counts.max() < 1.2 * 5000 / 8
    u = customer_fraction(ids, seed=0)
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    assert not np.array_equal(u, customer_fraction(ids, seed=1))


def test_partitions_together_give_the_whole_frame_journeys(lake):
    from journeynet.data.inputs import load_touchpoints

    frame = load_touchpoints(lake[0])
    vocab = Vocab.fit(frame)
    whole = build_journeys(frame, vocab)
    for n_parts in (1, 3, 7):
        part = customer_partition(frame["customer_id"], n_parts)
        pieces = [partition_journeys(frame[part == p], vocab) for p in range(n_parts)]
        assert digest(sort_by_customer(concat_journeys(pieces))) == digest(whole), n_parts


def test_partition_journeys_do_not_depend_on_row_order(lake):
    from journeynet.data.engines import canonical_chunk, input_files

    cfg = data_cfg(lake[0])
    rows = pd.concat([canonical_chunk(cfg, i, f, None, 1) for i, f in enumerate(input_files(cfg))])
    vocab = Vocab.fit(rows)
    shuffled = rows.sample(frac=1.0, random_state=3)
    assert digest(partition_journeys(shuffled, vocab)) == digest(partition_journeys(rows, vocab))


def test_in_process_and_process_pool_stores_are_identical(lake, tmp_path):
    path = lake[0]
    build_journey_store(data_cfg(path), tmp_path / "one", settings=EngineSettings(partitions=5))
    build_journey_store(data_cfg(path), tmp_path / "pool", settings=EngineSettings(partitions=5, workers=2))
    v1, j1 = read_store(tmp_path / "one")
    v2, j2 = read_store(tmp_path / "pool")
    assert (tmp_path / "one" / "vocab.json").read_bytes() == (tmp_path / "pool" / "vocab.json").read_bytes()
    assert digest(j1) == digest(j2)
    s1, s2 = hash_split(j1, 0.1, 0.2, seed=0), hash_split(j2, 0.1, 0.2, seed=0)
    assert all(np.array_equal(s1[k], s2[k]) for k in s1)
    # and the store holds exactly the journeys of one build_journeys on the whole input
    from journeynet.data.inputs import load_touchpoints

    frame = load_touchpoints(path)
    assert v1 == Vocab.fit(frame)
    assert digest(sort_by_customer(j1)) == digest(build_journeys(frame, v1))
    manifest = read_manifest(tmp_path / "one")
    assert [s["file"] for s in manifest["shards"]] == [f"part-{p:05d}.parquet" for p in range(5)]
    assert sum(s["journeys"] for s in manifest["shards"]) == len(j1) == manifest["journeys"]


def test_hash_split_is_the_same_on_any_subset_of_customers(lake):
    from journeynet.data.inputs import load_touchpoints

    frame = load_touchpoints(lake[0])
    j = build_journeys(frame, Vocab.fit(frame))
    split = hash_split(j, 0.1, 0.2, seed=4)
    role = np.empty(len(j), dtype=object)
    for k, idx in split.items():
        role[idx] = k
    # customers never straddle splits, and the shares are near the asked ones
    by_customer = pd.Series(role).groupby(j.customer_id).nunique()
    assert by_customer.max() == 1
    share = pd.Series(role).groupby(j.customer_id).first().value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.06) and share["val"] == pytest.approx(0.1, abs=0.05)
    # any subset of customers (a rank's shards) gets the same split for its customers
    half = np.flatnonzero(customer_partition(j.customer_id, 2) == 1)
    sub = hash_split(j.subset(half), 0.1, 0.2, seed=4)
    for k in split:
        assert np.array_equal(half[sub[k]], np.intersect1d(split[k], half)), k


def test_store_needs_a_conversion_and_names_the_bad_file(tmp_path):
    raw = touchpoints(50).assign(converted=0)
    lake = write_lake(raw, tmp_path / "tp", n_files=2)
    with pytest.raises(InputError, match="no row marks a conversion"):
        build_journey_store(data_cfg(lake), tmp_path / "out", settings=EngineSettings(partitions=2))
    bad = touchpoints(50)
    bad["timestamp"] = bad["timestamp"].astype(str)
    bad.loc[bad.index[-1], "timestamp"] = "not a time"
    lake = write_lake(bad, tmp_path / "bad", n_files=2)
    bad_row = r"touchpoints file .*batch=1/part-0\.parquet: column 'timestamp' data row \d+ \('not a time'\)"
    with pytest.raises(InputError, match=bad_row):
        build_journey_store(data_cfg(lake), tmp_path / "out2", settings=EngineSettings(partitions=2))


def test_store_from_a_frame_in_memory_equals_the_file_store(lake, tmp_path):
    from journeynet.data.engines import build_store_from_frame
    from journeynet.data.inputs import load_touchpoints

    build_journey_store(data_cfg(lake[0]), tmp_path / "files", settings=EngineSettings(partitions=4))
    build_store_from_frame(load_touchpoints(lake[0]), tmp_path / "frame", n_partitions=4)
    assert (tmp_path / "files/vocab.json").read_bytes() == (tmp_path / "frame/vocab.json").read_bytes()
    for p in range(4):
        assert digest(read_store(tmp_path / "files", [p])[1]) == digest(read_store(tmp_path / "frame", [p])[1])


def test_spark_schema_names_every_shard_column():
    from journeynet.data.store import spark_schema

    vocab = Vocab.fit(touchpoints(5))
    ddl = spark_schema(vocab)
    assert ddl.startswith("channel array<bigint>, campaign array<bigint>, unit array<bigint>, "
                          "log_dt_prev array<float>, log_dt_end array<float>")
    assert "label tinyint, customer_id string, journey bigint, revenue double, end_time bigint" in ddl


def test_hash_split_keeps_a_user_in_one_split_when_ids_name_journeys():
    # Criteo-style ids name a journey within a user; data.split_group keys the split on the user
    from types import SimpleNamespace

    users = np.repeat(np.arange(400), 3)
    ids = np.array([f"u{u}_j{k}" for u, k in zip(users, np.tile(np.arange(3), 400), strict=True)])
    j = SimpleNamespace(customer_id=ids)
    split = hash_split(j, 0.1, 0.2, seed=0, group_pattern="^u[0-9]+")
    role = np.empty(len(ids), dtype=object)
    for k, idx in split.items():
        role[idx] = k
    assert pd.Series(role).groupby(users).nunique().max() == 1
    # keyed on the journey id alone, the same users straddle splits
    plain = hash_split(j, 0.1, 0.2, seed=0)
    role_plain = np.empty(len(ids), dtype=object)
    for k, idx in plain.items():
        role_plain[idx] = k
    assert pd.Series(role_plain).groupby(users).nunique().max() > 1
