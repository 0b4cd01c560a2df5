"""predict.py: score new journeys with a saved run's model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from conftest import run_cli
from journeynet.data.inputs import load_touchpoints
from journeynet.data.journeys import Vocab, build_journeys
from journeynet.model.module import JourneyModule
from journeynet.model.predict import predict_proba
from test_readme import run_entry


def test_predict_scores_a_new_file_with_the_saved_model(tiny_run: Path, tmp_path: Path) -> None:
    tp = pd.read_csv(tiny_run / "touchpoints.csv", keep_default_na=False)
    new = tmp_path / "new.parquet"
    tp.to_parquet(new)
    proc = run_cli("predict.py", f"run_dir={tiny_run}", f"data.touchpoints={new}", f"hydra.run.dir={tmp_path / 'p'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv")
    assert list(pred.columns) == ["customer_id", "journey", "p", "converted"]
    assert pred["p"].between(0, 1).all()
    assert pred["converted"].sum() == tp["converted"].sum()  # one journey ends at each conversion
    assert not pred.duplicated(["customer_id", "journey"]).any()
    # the saved model's own scores of the same journeys, built the way train.py builds them
    module = JourneyModule.load(tiny_run / "model.ckpt")
    journeys = build_journeys(load_touchpoints(tiny_run / "touchpoints.csv"), Vocab.load(tiny_run / "vocab.json"))
    expected, _ = predict_proba(module.net, journeys)
    np.testing.assert_allclose(pred["p"], expected, rtol=1e-5)


def test_predict_without_a_model_is_one_line(tmp_path: Path, capsys) -> None:
    args = [f"run_dir={tmp_path}", "data.touchpoints=x.csv", f"hydra.run.dir={tmp_path / 'p'}"]
    assert run_entry("predict.py", args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: run_dir={tmp_path} has no model.ckpt or vocab.json: pass a train.py run dir"]
