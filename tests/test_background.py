"""The second process: its value, its errors and its log lines come back as if it ran here."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from conftest import TINY, run_cli
from journeynet.background import Background
from journeynet.errors import InputError


def _pid_and_sum(values: list[int]) -> tuple[int, int]:
    logging.getLogger("journeynet.test").info("summing %d values", len(values))
    return os.getpid(), sum(values)


def _bad_file(path: str) -> None:
    raise InputError(f"{path}: column 'spend' is missing")


def test_the_value_comes_from_another_process_and_its_log_lines_come_here(caplog) -> None:
    caplog.set_level(logging.INFO)
    with Background(_pid_and_sum, [1, 2, 3]) as job:
        pid, total = job.result()
    assert total == 6 and pid != os.getpid()
    assert "summing 3 values" in caplog.text


def test_an_input_error_there_is_raised_here_with_its_message() -> None:
    with Background(_bad_file, "spend.csv") as job, pytest.raises(InputError) as err:
        job.result()
    assert str(err.value) == "spend.csv: column 'spend' is missing"


def test_train_writes_the_same_outputs_with_and_without_the_second_process(tiny_run: Path, tmp_path: Path) -> None:
    # the tiny world stays under auto's 20,000 journeys: tiny_run is the one-process run
    # a ${hydra:...} setting is resolved before it crosses to the other process
    proc = run_cli("train.py", *TINY, "background=true", f"hydra.run.dir={tmp_path}",
                   "attribution.cache_dir=${hydra:runtime.output_dir}/fits")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list((tmp_path / "fits").iterdir())  # the engine's cache landed where the setting says
    log_text = (tmp_path / "train.log").read_text()
    assert "net_free_work runs in a second process" in log_text
    assert "net_free_work runs in a second process" not in (tiny_run / "train.log").read_text()
    # every table and the engine's parameters, including the generated inputs that process wrote
    names = sorted(p.name for p in tiny_run.iterdir() if p.suffix in (".csv", ".json") and p.name != "metrics.json")
    assert {"touchpoints.csv", "ground_truth.json", "response_draws.csv", "daily_units.csv"} <= set(names)
    for name in names:
        assert (tmp_path / name).read_bytes() == (tiny_run / name).read_bytes(), name
    assert not [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert "funnel fit 2/3" in log_text  # the engine's log lines reached the run's log


def test_auto_takes_a_second_process_only_for_large_one_process_runs() -> None:
    from omegaconf import OmegaConf

    from journeynet.pipeline import background_enabled
    from journeynet.preflight import SettingError

    one = {"devices": 1, "num_nodes": 1}
    assert not background_enabled(OmegaConf.create({"background": "auto", "trainer": one}), 19_999)
    assert background_enabled(OmegaConf.create({"background": "auto", "trainer": one}), 20_000)
    assert background_enabled(OmegaConf.create({"background": True, "trainer": one}), 10)
    assert not background_enabled(OmegaConf.create({"background": False, "trainer": one}), 10**6)
    ddp = {"strategy": "ddp", "devices": 2, "num_nodes": 1}
    assert not background_enabled(OmegaConf.create({"background": True, "trainer": ddp}), 10**6)
    with pytest.raises(SettingError, match="background must be true, false or auto, got 'maybe'"):
        background_enabled(OmegaConf.create({"background": "maybe", "trainer": one}), 10)
