"""Score new journeys: python predict.py run_dir=DIR data.touchpoints=NEW.csv. Logic lives in journeynet.scoring."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from journeynet.cli import guarded


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@guarded
def main(cfg: DictConfig) -> float:
    """Write predictions.csv for the new file; returns the mean predicted probability."""
    from journeynet.scoring import run_predict

    return run_predict(cfg)


if __name__ == "__main__":
    main()
