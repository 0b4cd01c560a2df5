"""Train journeynet: python train.py [data=...] [hydra overrides]. Logic lives in journeynet.pipeline."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from journeynet.cli import guarded


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@guarded
def main(cfg: DictConfig) -> float:
    """Run the training job; returns the optimized metric for sweepers."""
    from journeynet.pipeline import run_training

    return run_training(cfg)


if __name__ == "__main__":
    main()
