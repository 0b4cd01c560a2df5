"""Write a generated world's touchpoints as a Parquet lake (time-ordered files) and its spend, once.

    PYTHONPATH=src python bench/write_lake.py --pool 3900000 --files 20 --out /tmp/lake10m

Writes ``OUT/touchpoints/part-000.parquet ...`` (rows split by time into ``--files`` files,
so every file holds random customers, as a time-partitioned lake has them; ``timestamp``
typed, so ``data.start``/``data.end`` push down) and ``OUT/spend.csv``. Then::

    python train.py data=csv data.touchpoints=OUT/touchpoints data.spend=OUT/spend.csv data.journeys=STORE
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from journeynet.synthetic.simulate import SimConfig, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=630_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    sim = simulate(SimConfig(pool=args.pool, seed=args.seed), optimum=False)
    tp = sim.touchpoints
    print(f"generated {len(tp):,} touchpoints in {time.perf_counter() - t0:.1f} s", flush=True)
    out = Path(args.out)
    (out / "touchpoints").mkdir(parents=True, exist_ok=True)
    order = np.argsort(tp["timestamp"].to_numpy(), kind="stable")
    for i, rows in enumerate(np.array_split(order, args.files)):
        part = tp.take(np.sort(rows))  # a file's rows keep the frame's order
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), out / "touchpoints" / f"part-{i:03d}.parquet")
    sim.spend.to_csv(out / "spend.csv", index=False)
    print(f"wrote {args.files} files under {out / 'touchpoints'} and {out / 'spend.csv'} "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    main()
