import io
import sys

import pytest

from journeynet.progress import progress, progress_bar, progress_enabled


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("ci", "tty", "expected"), [
    (None, True, True), ("true", True, False), ("1", True, False), ("TRUE", True, False),
    ("false", True, True), ("0", True, True), (None, False, False), ("true", False, False),
])
def test_progress_enabled(monkeypatch, ci, tty, expected):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    monkeypatch.setattr(sys, "stdout", _Tty() if tty else io.StringIO())
    assert progress_enabled() is expected


def test_progress_passes_items_through_and_stays_quiet_in_ci(monkeypatch, capsys):
    monkeypatch.setenv("CI", "true")
    assert list(progress(range(5), desc="x")) == [0, 1, 2, 3, 4]
    assert list(progress((i for i in range(3)), desc="gen", total=3)) == [0, 1, 2]
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_progress_bar_is_a_quiet_no_op_in_ci(monkeypatch, capsys):
    monkeypatch.setenv("CI", "1")
    with progress_bar(desc="fit", total=3) as bar:
        for _ in range(3):
            bar.update(1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
