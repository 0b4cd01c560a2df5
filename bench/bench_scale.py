"""Journeys at 10M touchpoints: whole frame vs per-partition engines (local, process pool, Dask).

    PYTHONPATH=src nice -n 10 python bench/bench_scale.py --rows 10000000 --files 20 --partitions 16

Writes a Parquet lake of ``--rows`` generated touchpoints (``--files`` files, random
customers in every file, as a lake partitioned by time has them), then runs each path in
its own subprocess, sampling the resident memory of its whole process tree (Dask workers
included) every 0.2 s:

* ``frame``: ``load_touchpoints(dir)`` + ``Vocab.fit`` + ``build_journeys`` on one frame;
* ``local1``: the partitioned engine in this process, stage by stage (per-file map and
  per-partition reduce timed on their own: the per-shard throughput);
* ``local2``: the same with a pool of 2 processes;
* ``dask2``: the Dask engine on a LocalCluster of 2 worker processes.

Every partitioned path must write the same shards (checked by digest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

UNITS = [("google_ads", "search"), ("google_ads", "shopping"), ("meta_ads", "social"), ("microsoft_ads", "search"),
         ("email", ""), ("direct", ""), ("organic_search", "")]


def write_lake(root: Path, rows: int, files: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    n_customers = max(rows // 4, 1)
    per = rows // files
    start = np.datetime64("2024-01-01T00:00:00", "ns")
    for f in range(files):
        cust = rng.integers(0, n_customers, per)
        unit = rng.integers(0, len(UNITS), per)
        t = start + (rng.integers(0, 182 * 86400, per) * 1_000_000_000).astype("timedelta64[ns]")
        frame = pd.DataFrame({
            "customer_id": pd.Series(cust).map("c{:08d}".format), "timestamp": t,
            "channel": np.array([u[0] for u in UNITS])[unit], "campaign_type": np.array([u[1] for u in UNITS])[unit],
            "converted": (rng.random(per) < 0.03).astype(np.int8), "revenue": np.round(rng.gamma(2, 20, per), 2),
        })
        frame.to_parquet(root / f"part-{f:05d}.parquet", row_group_size=100_000, index=False)


def store_digest(store: Path) -> str:
    from journeynet.data.store import read_manifest, read_store

    h = hashlib.sha256((store / "vocab.json").read_bytes())
    for i in range(len(read_manifest(store)["shards"])):
        j = read_store(store, [i])[1]
        for name in j.__dataclass_fields__:
            a = getattr(j, name)
            h.update(np.asarray(a, dtype=str).tobytes() if a.dtype == object else a.tobytes())
    return h.hexdigest()[:16]


def run_variant(variant: str, lake: Path, out: Path, partitions: int) -> dict:
    from journeynet.data import engines
    from journeynet.data.engines import EngineSettings, build_journey_store

    data = {"touchpoints": str(lake), "lookback_days": 30, "max_len": 50}
    res: dict = {}
    t0 = time.perf_counter()
    c0 = time.process_time()
    if variant == "frame":
        from journeynet.data.inputs import load_touchpoints
        from journeynet.data.journeys import Vocab, build_journeys

        frame = load_touchpoints(lake)
        res["load_s"] = time.perf_counter() - t0
        vocab = Vocab.fit(frame)
        j = build_journeys(frame, vocab)
        res.update(journeys=len(j), rows=len(frame), frame_mb=frame.memory_usage(deep=True).sum() / 2**20)
    elif variant == "local1":
        files = engines.input_files(data)
        spill = tempfile.mkdtemp(dir=out.parent)
        out.mkdir(parents=True)
        map_s, reduce_s, map_cpu, reduce_cpu = [], [], [], []
        sums = []
        for i, f in enumerate(files):
            t, c = time.perf_counter(), time.process_time()
            sums.append(engines._map_file(data, i, f, None, partitions, spill))
            map_s.append(time.perf_counter() - t)
            map_cpu.append(time.process_time() - c)
        vocab = engines.fit_vocab(sums, None, str(lake))
        shards = []
        for p in range(partitions):
            t, c = time.perf_counter(), time.process_time()
            shards.append(engines._reduce_spilled(spill, p, vocab, 30, 50, str(out)))
            reduce_s.append(time.perf_counter() - t)
            reduce_cpu.append(time.process_time() - c)
        res.update(map_cpu_s=sum(map_cpu), reduce_cpu_s=sum(reduce_cpu))
        engines.write_manifest(out, vocab, shards, engines.settings_record(data, EngineSettings()))
        rows = sum(s["rows"] for s in sums)
        res.update(rows=rows, journeys=sum(s["journeys"] for s in shards), map_s=sum(map_s), reduce_s=sum(reduce_s),
                   map_rows_per_s=rows / sum(map_s), reduce_rows_per_s=rows / sum(reduce_s),
                   reduce_s_per_shard_median=float(np.median(reduce_s)), map_s_per_file_median=float(np.median(map_s)))
    else:
        settings = {"local2": EngineSettings(partitions=partitions, workers=2),
                    "dask2": EngineSettings(engine="dask", partitions=partitions, workers=2)}[variant]
        res.update(build_journey_store(data, out, None, settings))
    res["wall_s"] = time.perf_counter() - t0
    res["cpu_s_main_process"] = time.process_time() - c0  # user + system of this process (not its workers)
    if variant != "frame":
        res["digest"] = store_digest(out)
    return res


def tree_rss(pid: int) -> int:
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for q in procs:
        try:
            total += q.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measure(variant: str, lake: Path, work: Path, partitions: int) -> dict:
    cmd = [sys.executable, __file__, "--run", variant, "--lake", str(lake), "--out", str(work / variant),
           "--partitions", str(partitions)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.2)

    th = threading.Thread(target=sample)
    th.start()
    out, err = proc.communicate()
    th.join()
    if proc.returncode:
        raise RuntimeError(err[-3000:])
    res = json.loads(out.strip().splitlines()[-1])
    res["peak_tree_rss_mb"] = peak[0] / 2**20
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--variants", default="frame,local1,local2,dask2")
    ap.add_argument("--work", default=None)
    ap.add_argument("--run", default=None)
    ap.add_argument("--lake", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.run:
        print(json.dumps(run_variant(args.run, Path(args.lake), Path(args.out), args.partitions)))
        return
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_scale_"))
    lake = work / "lake"
    if not lake.exists():
        lake.mkdir(parents=True)
        t = time.perf_counter()
        write_lake(lake, args.rows, args.files)
        print(f"lake: {args.rows} rows in {args.files} files, written in {time.perf_counter() - t:.1f} s", flush=True)
    print(f"load average before: {os.getloadavg()}", flush=True)
    for v in args.variants.split(","):
        res = measure(v, lake, work, args.partitions)
        print(v, json.dumps({k: (round(x, 3) if isinstance(x, float) else x) for k, x in res.items()}), flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
