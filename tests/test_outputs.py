import json

import numpy as np
import pandas as pd
import pytest

from journeynet.outputs import OutputStage


def test_context_manager_publishes_all_files_on_success(tmp_path):
    with OutputStage(tmp_path) as out:
        out.write_csv("plan.csv", pd.DataFrame({"channel": ["google_ads"], "spend": [1.5]}))
        out.write_json("metrics.json", {"test_auc": np.float32(0.5), "n": np.int64(3)})
        out.write_text("note.txt", "hello")
        fig = out.path_for("figures/attention.png")
        fig.write_bytes(b"png")
        assert fig.suffix == ".png" and not (tmp_path / "plan.csv").exists()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "attention.png", "metrics.json", "note.txt", "plan.csv"]
    assert pd.read_csv(tmp_path / "plan.csv").to_dict("list") == {
        "channel": ["google_ads"], "spend": [1.5]}


def test_failure_leaves_no_file_behind(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), OutputStage(tmp_path) as out:
        out.write_json("metrics.json", {"test_auc": 0.7})
        out.write_csv("plan.csv", pd.DataFrame({"spend": [1.0]}))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_json_has_indent_2_and_nan_as_null(tmp_path):
    with OutputStage(tmp_path) as out:
        out.write_json("m.json", {"auc": float("nan"), "xs": np.array([1.0, np.inf])})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == {"auc": None, "xs": [1.0, None]}
    assert '\n  "auc": null' in text


def test_temporaries_are_not_final_names_until_commit(tmp_path):
    out = OutputStage(tmp_path)
    out.write_text("report.txt", "x")
    (tmp,) = list(tmp_path.iterdir())
    assert tmp.name.startswith("report.tmp-") and tmp.name.endswith(".txt")
    assert out.commit() == [tmp_path / "report.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]
