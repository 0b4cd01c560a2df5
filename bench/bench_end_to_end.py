"""End to end at hackathon scale: ``train.py`` then ``optimize.py`` as subprocesses.

    PYTHONPATH=src python bench/bench_end_to_end.py [--pool 800000] [--repeats 1] [--out outputs/bench_e2e]
    PYTHONPATH=src python bench/bench_end_to_end.py --csv RUN_DIR   # read a run's touchpoints.csv and spend.csv
    PYTHONPATH=src python bench/bench_end_to_end.py --lake DIR      # DIR/touchpoints/*.parquet (bench/write_lake.py)

``data.synthetic.pool=800000`` generates about 1.56M touchpoints (about 1.95 touches per
pool member, 0.73 of the pool touched). Each phase runs under ``/usr/bin/time -v`` when
it is installed (peak RSS of the tree's largest process), else the peak RSS comes from
``resource.getrusage(RUSAGE_CHILDREN)``; the tree's summed RSS is sampled every 0.2 s
as well (``train.py`` runs a second process while the net trains). Wall time, peak
memory and the per-phase split read from the run's ``train.log`` timestamps are
printed, with the CPU seconds (user + system) from ``time -v``: on a shared machine
they show the work done, which two processes spread over two cores. Targets: under 3
minutes and under 4 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from bench_scale import tree_rss

ROOT = Path(__file__).resolve().parents[1]
TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)

# train.log lines that open a phase (logger message prefix -> phase name)
PHASES = [
    ("training on ", "load (or generate) + journeys"),
    ("`Trainer.fit` stopped", "net training (baselines, engine, curves beside it)"),
    ("test AUC", "evaluation, best achievable, the second process's result"),
]

def run(cmd: list[str], log_path: Path) -> dict[str, float]:
    """Run ``cmd`` (under ``time -v`` if available); wall seconds and peak RSS in MB."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}:{os.environ.get('PYTHONPATH', '')}")
    env.setdefault("CI", "true")  # progress bars off: a benchmark's output is not a terminal
    full = [TIME, "-v", *cmd] if TIME else cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    tree_peak = [0]
    with open(log_path, "w") as fh:
        proc = subprocess.Popen(full, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)

        def sample() -> None:  # train.py runs a second process: the sum over the tree is the memory used
            while proc.poll() is None:
                tree_peak[0] = max(tree_peak[0], tree_rss(proc.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        proc.wait()
        sampler.join()
    wall = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    cpu = [float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)]
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if m:
        peak_kb = int(m.group(1))
    else:  # RUSAGE_CHILDREN keeps the maximum over all children so far
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if peak_kb <= before:
            peak_kb = before
    # CPU seconds (user + system) barely depend on other load: the work done, whatever the wall.
    return {"wall_s": wall, "cpu_s": sum(cpu) if cpu else float("nan"), "peak_rss_mb": peak_kb / 1024,
            "peak_tree_rss_mb": tree_peak[0] / 2**20}


def phase_times(log_file: Path) -> dict[str, float]:
    """Seconds between the phase-opening lines of ``train.log`` (Hydra's default format)."""
    if not log_file.exists():
        return {}
    stamps = []
    for line in log_file.read_text(errors="replace").splitlines():
        m = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]", line)
        if m:
            stamps.append((datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f"), line))
    if not stamps:
        return {}
    start, end = stamps[0][0], stamps[-1][0]
    marks = [(start, "start")]
    for prefix, name in PHASES:
        hit = next((t for t, line in stamps if prefix in line), None)
        if hit is not None:
            marks.append((hit, name))
    marks.append((end, "attribution tables, figures, outputs"))
    out = {}
    for (t0, _), (t1, name) in zip(marks, marks[1:], strict=False):
        out[name] = (t1 - t0).total_seconds()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=800_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default="outputs/bench_e2e")
    ap.add_argument("--extra", nargs="*", default=[], help="more train.py overrides")
    ap.add_argument("--csv", default=None, help="a run dir whose touchpoints.csv and spend.csv to read (data=csv, "
                    "as a user with an export runs it) instead of generating a world")
    ap.add_argument("--lake", default=None, help="a directory written by bench/write_lake.py: train.py reads its "
                    "Parquet touchpoints and spend.csv, with a journey store under the run dir (data.journeys)")
    args = ap.parse_args()
    out = ROOT / args.out
    results = []
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()}, time -v: {bool(TIME)}", flush=True)
    for r in range(args.repeats):
        run_dir = out / f"run{r}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        if args.lake:
            src = Path(args.lake).resolve()
            data = ["data=csv", f"data.touchpoints={src / 'touchpoints'}", f"data.spend={src / 'spend.csv'}",
                    f"data.journeys={run_dir / 'journeys'}"]
        elif args.csv:
            src = Path(args.csv).resolve()
            data = ["data=csv", f"data.touchpoints={src / 'touchpoints.csv'}", f"data.spend={src / 'spend.csv'}"]
        else:
            data = [f"data.synthetic.pool={args.pool}"]
        train = run([sys.executable, "train.py", *data, f"hydra.run.dir={run_dir}", *args.extra],
                    out / f"train{r}.out")
        opt_dir = out / f"optimize{r}"
        optimize = run([sys.executable, "optimize.py", f"run_dir={run_dir}", f"hydra.run.dir={opt_dir}"],
                       out / f"optimize{r}.out")
        phases = phase_times(run_dir / "train.log")
        n_tp = None
        tp_file = Path(args.csv) / "touchpoints.csv" if args.csv else run_dir / "touchpoints.csv"
        if args.lake:
            import pyarrow.dataset as ds

            n_tp = ds.dataset(str(Path(args.lake) / "touchpoints"), format="parquet").count_rows()
        elif tp_file.exists():
            with open(tp_file) as fh:
                n_tp = sum(1 for _ in fh) - 1
        rec = {"train": train, "optimize": optimize, "phases_s": phases, "touchpoints": n_tp,
               "total_wall_s": train["wall_s"] + optimize["wall_s"],
               "total_cpu_s": train["cpu_s"] + optimize["cpu_s"],
               "peak_rss_mb": max(train["peak_rss_mb"], optimize["peak_rss_mb"]),
               "peak_tree_rss_mb": max(train["peak_tree_rss_mb"], optimize["peak_tree_rss_mb"]),
               "load_after": os.getloadavg()}
        results.append(rec)
        print(json.dumps(rec, indent=2), flush=True)
    wall = statistics.median(r["total_wall_s"] for r in results)
    peak = statistics.median(max(r["peak_rss_mb"], r["peak_tree_rss_mb"]) for r in results)
    cpu = statistics.median(r["total_cpu_s"] for r in results)
    source = f"lake={args.lake}" if args.lake else f"csv={args.csv}" if args.csv else f"pool={args.pool}"
    print(f"\n{source} touchpoints={results[-1]['touchpoints']}: end to end {wall:.1f} s "
          f"(target < 180 s: {'met' if wall < 180 else f'missed by {wall - 180:.0f} s'}), "
          f"CPU time {cpu:.1f} s, peak RSS of the process tree {peak / 1024:.2f} GB "
          f"(target < 4 GB: {'met' if peak < 4096 else 'missed'})")


if __name__ == "__main__":
    main()
