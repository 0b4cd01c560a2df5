"""The experiments file (data.experiments): parsed per the contract, every bad row one exact line."""

from __future__ import annotations

import pandas as pd
import pytest

from journeynet.data.experiments import load_experiments
from journeynet.data.inputs import load_inputs
from journeynet.errors import InputError

GOOD = {"channel": "google_ads", "campaign_type": "brand_search", "start": "2024-02-01", "end": "2024-02-14",
        "incremental_conversions": 120.0, "standard_error": 30.0}


@pytest.fixture()
def spend() -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    units = [("google_ads", "brand_search"), ("google_ads", "search_network"), ("meta_ads", "prospecting")]
    return pd.DataFrame([(d, c, k, 100.0) for d in dates for c, k in units],
                        columns=["date", "channel", "campaign_type", "spend"])


def write(tmp_path, rows: list[dict], name: str = "lift.csv") -> str:
    path = tmp_path / name
    frame = pd.DataFrame(rows)
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_a_valid_file_is_read_with_defaults(tmp_path, spend):
    rows = [GOOD, {**GOOD, "campaign_type": "", "channel": "meta_ads", "lag_days": 7, "name": "meta holdout"}]
    rows[0] = {**GOOD, "lag_days": None, "name": None}
    out = load_experiments(write(tmp_path, rows), spend)
    assert list(out["lag_days"]) == [0, 7]
    assert out["name"][0] == "google_ads/brand_search 2024-02-01..2024-02-14"
    assert out["name"][1] == "meta holdout" and out["campaign_type"][1] == ""
    assert out["start"][0] == pd.Timestamp("2024-02-01") and out["standard_error"][1] == 30.0


def test_parquet_is_read(tmp_path, spend):
    out = load_experiments(write(tmp_path, [GOOD], "lift.parquet"), spend)
    assert out["incremental_conversions"].tolist() == [120.0]


@pytest.mark.parametrize(("change", "message"), [
    ({"campaign_type": "pmax"}, "row 2, columns 'channel'/'campaign_type': unknown paid unit google_ads/pmax "
                                "(not in the spend data)"),
    ({"channel": "tiktok", "campaign_type": ""}, "row 2, column 'channel': unknown paid channel 'tiktok' "
                                                 "(not in the spend data)"),
    ({"end": "2024-01-20"}, "row 2, column 'end': 2024-01-20 is before start 2024-02-01"),
    ({"standard_error": -5.0}, "row 2, column 'standard_error': must be > 0, got -5"),
    ({"standard_error": 0.0}, "row 2, column 'standard_error': must be > 0, got 0"),
    ({"lag_days": 2.5}, "row 2, column 'lag_days': must be a whole number >= 0, got 2.5"),
    ({"end": "2024-02-25", "lag_days": 10}, "row 2, columns 'start'/'end': window 2024-02-01..2024-03-06 "
                                            "(lag included) is outside the data (2024-01-01..2024-02-29)"),
    ({"start": "not a day"}, "row 2, column 'start': not a date: 'not a day'"),
    ({"standard_error": "about 5"}, "row 2, column 'standard_error': not a finite number: 'about 5'"),
    ({"incremental_conversions": None}, "row 2, column 'incremental_conversions': missing value"),
])
def test_bad_rows_name_file_row_and_column(tmp_path, spend, change, message):
    path = write(tmp_path, [GOOD, {**GOOD, **change}])
    with pytest.raises(InputError) as err:
        load_experiments(path, spend)
    assert str(err.value) == f"experiments file {path}, {message}"


def test_a_unit_without_spend_in_the_window_is_refused(tmp_path, spend):
    dark = spend["campaign_type"].eq("brand_search") & spend["date"].between("2024-02-01", "2024-02-20")
    spend.loc[dark, "spend"] = 0.0
    path = write(tmp_path, [GOOD])
    with pytest.raises(InputError) as err:
        load_experiments(path, spend)
    assert str(err.value) == (f"experiments file {path}, row 1, columns 'start'/'end': google_ads/brand_search has "
                              "no spend from 2024-02-01 to 2024-02-14: nothing was switched off")


def test_missing_columns_and_missing_spend(tmp_path, spend):
    path = write(tmp_path, [{k: v for k, v in GOOD.items() if k != "standard_error"}])
    with pytest.raises(InputError, match=r"missing column\(s\) standard_error \(expected channel, campaign_type"):
        load_experiments(path, spend)
    with pytest.raises(InputError, match="experiments need spend data"):
        load_experiments(write(tmp_path, [GOOD]), None)


def test_load_inputs_reads_the_path_and_rejects_a_bad_file(tmp_path):
    synthetic = {"pool": 400, "days": 28, "seed": 0}
    unit = {**GOOD, "campaign_type": "", "start": "2024-01-22", "end": "2024-01-26", "lag_days": 2}
    ok = load_inputs({"source": "synthetic", "synthetic": synthetic, "experiments": write(tmp_path, [unit])})
    assert len(ok.experiments) == 1
    bad = write(tmp_path, [{**unit, "standard_error": -1}], "bad.csv")
    with pytest.raises(InputError, match="row 1, column 'standard_error': must be > 0"):
        load_inputs({"source": "synthetic", "synthetic": synthetic, "experiments": bad})


def test_train_with_a_bad_experiments_file_exits_2_and_writes_nothing(tmp_path):
    from conftest import run_cli

    bad = write(tmp_path, [{**GOOD, "start": "2024-01-15", "end": "2024-01-10"}])
    run_dir = tmp_path / "run"
    proc = run_cli("train.py", "data.synthetic.pool=400", "data.synthetic.days=28", f"data.experiments={bad}",
                   f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: experiments file {bad}, row 1, column 'end': 2024-01-10 is before start 2024-01-15")
    assert not (run_dir / "metrics.json").exists() and not (run_dir / "attribution.csv").exists()
