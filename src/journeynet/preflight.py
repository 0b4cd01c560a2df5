"""Checks of a run's settings before any work: the device it asks for, the checkpoint it resumes.

Each failure is a :class:`~journeynet.errors.JourneynetError` whose message names the
setting, so the entry point prints one line and exits 2 instead of a library's traceback
minutes into the run.

Quickstart
----------
>>> from omegaconf import OmegaConf
>>> check_device(OmegaConf.create({"accelerator": "cpu"}))  # CPU is always there
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from journeynet.errors import JourneynetError


class SettingError(JourneynetError):
    """A setting cannot work on this machine or with these files."""


def check_device(trainer_cfg: Any) -> None:
    """Refuse a GPU trainer on a machine without CUDA, suggesting ``trainer=cpu``."""
    accelerator = str(trainer_cfg.get("accelerator", "cpu")).lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise SettingError(f"trainer.accelerator={accelerator} needs CUDA, which this machine does not have "
                           "(torch.cuda.is_available() is False): use trainer=cpu")


def check_resume(ckpt_path: str | Path | None, model_cfg: Any, sizes: dict[str, int]) -> None:
    """Refuse to resume a checkpoint whose net was built with other settings, naming each one.

    Parameters
    ----------
    ckpt_path : str or Path, optional
        ``ckpt_path``; nothing is checked when None.
    model_cfg : mapping
        The ``model`` config this run would build (``_target_`` and constructor arguments).
    sizes : dict[str, int]
        Sizes that come from the data (``n_channels``, ``n_campaigns``).
    """
    if not ckpt_path:
        return
    path = Path(ckpt_path)
    if not path.is_file():
        raise SettingError(f"ckpt_path={ckpt_path}: file not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise SettingError(f"ckpt_path={ckpt_path} is not a readable checkpoint ({type(exc).__name__})") from exc
    saved = (ckpt.get("hyper_parameters") or {}).get("net_kwargs") or {}
    wanted = {k: v for k, v in dict(model_cfg).items() if not k.startswith("_")}
    diffs = [f"model.{k}={saved[k]} (this run: {v})" for k, v in wanted.items() if k in saved and saved[k] != v]
    diffs += [f"{k}={saved[k]} from its data (this run's data: {v})" for k, v in sizes.items()
              if k in saved and saved[k] != v]
    if diffs:
        raise SettingError(f"ckpt_path={ckpt_path} was trained with {', '.join(diffs)}: resume with the "
                           "checkpoint's settings and data, or train without ckpt_path")
