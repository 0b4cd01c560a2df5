"""Every command the README documents runs as written on the demo data (with small settings).

The README's ``bash`` blocks are parsed, and each ``python train.py|optimize.py|predict.py``
line is run in order in a fresh directory, in this process (Hydra's entry point, as the
shell would call it), with settings that shrink the generated world and the training. A
command documented to stop (``trainer=gpu`` without CUDA) must stop with its one line.
"""

from __future__ import annotations

import re
import runpy
import shlex
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from conftest import ROOT

ENTRY_POINTS = ("train.py", "optimize.py", "predict.py")
# Small settings appended to every train.py command; a command's own value wins, except the
# two below that only change how long a run takes.
SMALL_TRAIN = {
    "trainer.max_epochs": "1", "trainer.enable_progress_bar": "false", "model.hidden_size": "8",
    "attribution.funnel.max_iter": "3", "attribution.funnel.max_sequences": "800",
    "attribution.naive_max_journeys": "300", "attribution.funnel.refine_iter": "2",
    "attribution.funnel.interval_groups": "2", "attribution.funnel.interval_iter": "2",
    "attribution.funnel.interval_draws": "4", "attribution.response_draws": "2",
}
SMALL_WORLD = {"data.synthetic.pool": "1500", "data.synthetic.days": "35"}
SMALL_LANDINGS = {"data.generate.pool": "1500"}
SHRINK = {"trainer.max_epochs": "1", "response.bootstrap": "3"}


def readme_commands() -> list[list[str]]:
    """Every command of the README's bash blocks, as argv lists (``&&`` splits a line)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            command: list[str] = []
            for token in [*shlex.split(line, comments=True), "&&"]:
                if token != "&&":
                    command.append(token)
                elif command:
                    commands.append(command)
                    command = []
    return commands


def entry_commands() -> list[list[str]]:
    return [c for c in readme_commands() if c[0] == "python" and len(c) > 1 and c[1] in ENTRY_POINTS]


def with_small_settings(command: list[str]) -> list[str]:
    """The command's overrides plus the small settings it does not set itself."""
    script, args = command[1], command[2:]
    keys = {a.split("=", 1)[0].lstrip("+") for a in args if "=" in a}
    shrunk = [f"{a.split('=', 1)[0]}={SHRINK[a.split('=', 1)[0]]}" if a.split("=", 1)[0] in SHRINK else a
              for a in args]
    small: dict[str, str] = {}
    if script == "train.py":
        small.update(SMALL_TRAIN)
        preset = next((a.split("=", 1)[1] for a in args if a.startswith("data=")), "synthetic")
        if preset == "synthetic" and "data.touchpoints" not in keys:
            small.update(SMALL_WORLD)
        if preset == "netelixir" and "data.touchpoints" not in keys:
            small.update(SMALL_LANDINGS)
    return [*shrunk, *(f"{k}={v}" for k, v in small.items() if k not in keys)]


def run_entry(script: str, args: list[str]) -> int:
    """Run an entry point in this process as ``python script args`` would; returns the exit code."""
    argv = sys.argv
    sys.argv = [str(ROOT / script), *args]
    try:
        runpy.run_path(str(ROOT / script), run_name="__main__")
    except SystemExit as stop:
        return int(stop.code or 0) if not isinstance(stop.code, str) else 1
    finally:
        sys.argv = argv
    return 0


def test_the_readme_documents_every_entry_point() -> None:
    scripts = {c[1] for c in entry_commands()}
    assert scripts == set(ENTRY_POINTS)
    assert len(entry_commands()) >= 15


@pytest.mark.parametrize("command", entry_commands(), ids=lambda c: " ".join(c[1:])[:60])
def test_every_readme_command_composes(command: list[str], tmp_path: Path) -> None:
    """Each command's overrides name settings that exist (a fast check of the whole list)."""
    args = [a for a in with_small_settings(command) if a != "-m"]
    args = [re.sub(r"^(model\.hidden_size)=(\d+),.*$", r"\1=\2", a) for a in args]  # a sweep's first trial
    config = command[1].removesuffix(".py")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config, overrides=[a for a in args if not a.startswith("hydra.")])
    assert cfg.task_name == config


def run_in_order(commands: list[list[str]], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Run ``commands`` one after another in ``tmp_path`` (the cwd), as the README lists them."""
    for command in commands:
        if command[0] == "tensorboard":
            logdir = tmp_path / command[command.index("--logdir") + 1]
            assert list(logdir.glob("**/events.out.tfevents.*")), command
            continue
        if command[0] != "python" or command[1] not in ENTRY_POINTS:
            continue  # pip and pytest
        code = run_entry(command[1], with_small_settings(command))
        err = capsys.readouterr().err
        if "trainer=gpu" in command and not torch.cuda.is_available():
            assert code == 2 and err.strip().endswith("use trainer=cpu"), err
            continue
        assert code == 0, f"{' '.join(command)} exited {code}: {err[-2000:]}"


def test_the_set_up_and_every_plan_command_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    """The set-up's train and plan, then each documented optimize.py line that sets a constraint.

    Constraints are what can make a documented plan infeasible on the demo data; the other
    lines run in the slow test with the rest.
    """
    monkeypatch.chdir(tmp_path)
    commands = readme_commands()
    setup = next(i for i, c in enumerate(commands) if c[:2] == ["python", "train.py"])
    constrained = [c for c in commands[setup + 2:] if c[1:2] == ["optimize.py"]
                   and any(k in " ".join(c) for k in ("budget.min", "budget.max", "budget.bounds", "scenario="))]
    assert len(constrained) >= 3
    run_in_order([*commands[setup:setup + 2], *constrained], tmp_path, capsys)
    assert (tmp_path / "runs/demo/plan/plan.csv").exists()


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    run_in_order(readme_commands(), tmp_path, capsys)
    assert list(tmp_path.glob("multirun/train/*/best_trial.json"))
    assert (tmp_path / "outputs").exists() and list(tmp_path.glob("outputs/predict/*/predictions.csv"))
