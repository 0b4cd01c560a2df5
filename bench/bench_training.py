"""Training throughput: the Lightning loop against a plain PyTorch loop, same process.

    PYTHONPATH=src python bench/bench_training.py [--pool 100000] [--repeats 3] [--epochs 1]

Both loops train the same :class:`AttentionLSTM` (default sizes, hidden 64) from the same
initial weights on the same batches: the plain loop iterates the very DataLoader (and
length-bucket sampler) that ``JourneyDataModule.train_dataloader`` returns. Same
optimizer (AdamW lr 3e-3, weight decay 0.01), same gradient clipping (norm 1.0, the
trainer preset), same loss (BCE with logits).

The Lightning side is the pipeline's own ``JourneyModule`` (which also updates the
train AUROC/AP/ECE torchmetrics and logs them once per epoch) under ``pl.Trainer`` with
no logger, no checkpointing, no progress bar, no model summary and no validation.
The plain side is the minimal loop (``--plain-metrics`` adds the same torchmetrics updates,
to separate Lightning's own overhead from the module's metric bookkeeping).

Runs alternate (L P P L L P ...) and the figure is the median journeys/s over
``--repeats`` runs of each. ``torch.set_num_threads(1)`` (``--threads``), as the pipeline's
``torch_threads: 1``: on the shared 2-core box two threads were 7 % faster with a free
core and collapsed when another process held it (bench/RESULTS.md).

GPU (untested here, no GPU was lent): ``--device cuda --bf16 --batch-size 8192`` runs
Lightning with ``accelerator="gpu", precision="bf16-mixed"`` and the plain loop with the
batch moved to the device and bf16 autocast.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from functools import partial

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from journeynet.causal.sample import SimConfig, simulate
from journeynet.data.journeys import Vocab, build_journeys, split_journeys
from journeynet.model.datamodule import JourneyDataModule
from journeynet.model.module import JourneyModule, _stage_metrics
from journeynet.model.net import AttentionLSTM

LR, WD, CLIP = 3e-3, 0.01, 1.0


def make_data(pool: int, batch_size: int) -> tuple[Vocab, JourneyDataModule]:
    sim = simulate(SimConfig(pool=pool, seed=0))
    vocab = Vocab.fit(sim.touchpoints, sim.spend)
    journeys = build_journeys(sim.touchpoints, vocab)
    splits = split_journeys(journeys, 0.1, 0.2, seed=0)
    return vocab, JourneyDataModule(journeys, splits, batch_size=batch_size, seed=0)


def make_net(vocab: Vocab) -> AttentionLSTM:
    torch.manual_seed(0)
    return AttentionLSTM(vocab.n_channels, vocab.n_campaigns)


DEVICE, BF16 = "cpu", False  # set from --device / --bf16 in main()


def run_lightning(vocab: Vocab, dm: JourneyDataModule, epochs: int, module_cls: type = JourneyModule) -> float:
    module = module_cls(make_net(vocab), partial(torch.optim.AdamW, lr=LR, weight_decay=WD))
    trainer = pl.Trainer(
        accelerator="gpu" if DEVICE == "cuda" else "cpu", devices=1, max_epochs=epochs,
        precision="bf16-mixed" if BF16 else "32-true", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        num_sanity_val_steps=0, gradient_clip_val=CLIP, deterministic=False,
    )
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return time.perf_counter() - t0


def run_plain(vocab: Vocab, dm: JourneyDataModule, epochs: int, metrics: bool) -> float:
    net = make_net(vocab).to(DEVICE)
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WD)
    m = _stage_metrics("train").to(DEVICE) if metrics else None
    t0 = time.perf_counter()
    loader = dm.train_dataloader()
    net.train()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            batch = {k: v.to(DEVICE, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=BF16):
                logits = net(batch["channel"], batch["campaign"], batch["feats"], batch["lengths"])["logits"]
            logits = logits.float()
            y = batch["label"]
            loss = F.binary_cross_entropy_with_logits(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            opt.step()
            if m is not None:
                with torch.no_grad():
                    m.update(torch.sigmoid(logits), y.long())
    if m is not None:
        m.compute()
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: Lightning accelerator=gpu; the plain loop moves each batch to the GPU")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast on both sides (precision=bf16-mixed)")
    ap.add_argument("--plain-metrics", action="store_true", help="also time the plain loop with torchmetrics")
    args = ap.parse_args()
    global DEVICE, BF16
    DEVICE, BF16 = args.device, args.bf16
    torch.set_num_threads(args.threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("CI", "true")

    vocab, dm = make_data(args.pool, args.batch_size)
    n = len(dm.splits["train"]) * args.epochs
    print(f"cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, load {os.getloadavg()}")
    print(f"pool {args.pool}: {len(dm.journeys)} journeys, {n // args.epochs} train journeys, "
          f"batch {args.batch_size}, {args.epochs} epoch(s) per run")
    kinds = ["lightning", "plain"] + (["plain+metrics"] if args.plain_metrics else [])
    runners = {
        "lightning": lambda: run_lightning(vocab, dm, args.epochs),
        "plain": lambda: run_plain(vocab, dm, args.epochs, metrics=False),
        "plain+metrics": lambda: run_plain(vocab, dm, args.epochs, metrics=True),
    }
    run_plain(vocab, dm, 1, metrics=False)  # warm-up (allocator, first-call overheads)
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    for r in range(args.repeats):
        order = kinds if r % 2 == 0 else kinds[::-1]
        for k in order:
            secs = runners[k]()
            rates[k].append(n / secs)
            print(f"repeat {r} {k:20s} {secs:7.2f} s  {n / secs:9.0f} journeys/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["lightning"] / med["plain"]
    paired = [lt / p for lt, p in zip(rates["lightning"], rates["plain"], strict=True)]
    print()
    for k, v in med.items():
        print(f"median {k:20s} {v:9.0f} journeys/s")
    print(f"ratio lightning/plain (of medians) {ratio:.3f}; per repeat {np.round(paired, 3).tolist()}; "
          f"target >= 0.8: {'met' if ratio >= 0.8 else 'missed'}")
    if "plain+metrics" in med:
        print(f"ratio lightning/plain+metrics {med['lightning'] / med['plain+metrics']:.3f}")
    print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
