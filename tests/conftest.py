"""Shared fixtures: one tiny end-to-end train run reused by the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# A world small enough to train, attribute and plan in well under a minute on 2 cores.
TINY = [
    "data.synthetic.pool=4000", "data.synthetic.days=70", "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false", "model.hidden_size=16", "attribution.funnel.max_iter=8",
    "attribution.funnel.max_sequences=2500", "attribution.naive_max_journeys=600",
    "attribution.funnel.refine_iter=4", "attribution.funnel.interval_groups=4", "attribution.funnel.interval_iter=3",
    "attribution.funnel.interval_draws=8", "attribution.response_draws=4", "attribution.cache_dir=null",
]


def run_cli(script: str, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run an entry point the way a user does, from the project root."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CI": "true"}
    return subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def one_thread() -> object:
    # Tiny tensors: one intra-op thread is much faster than two spinning on a busy 2-core box.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("train_run")
    proc = run_cli("train.py", *TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir
