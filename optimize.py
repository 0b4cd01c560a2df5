"""Plan a budget: python optimize.py run_dir=DIR [budget.total=200000] [overrides].

Logic lives in journeynet.planning.run.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from journeynet.cli import guarded


@hydra.main(version_base="1.3", config_path="conf", config_name="optimize")
@guarded
def main(cfg: DictConfig) -> float:
    """Allocate the budget; returns the plan's expected conversions."""
    from journeynet.planning.run import run_optimize

    return run_optimize(cfg)


if __name__ == "__main__":
    main()
