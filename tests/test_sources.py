"""Directories and globs of Parquet files as inputs: projection, date pushdown, errors naming the file."""

import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from journeynet.data.inputs import load_inputs, load_spend, load_touchpoints
from journeynet.data.sources import date_bounds, read_dataset
from journeynet.errors import InputError


def touches(days, customers=("a", "b")):
    rows = []
    for d in days:
        for c in customers:
            rows.append({"customer_id": c, "timestamp": pd.Timestamp("2024-01-01") + pd.Timedelta(days=d, hours=9),
                         "channel": "Google Ads", "campaign_type": "Search", "converted": int(d % 7 == 6),
                         "revenue": 5.0, "unused": "x" * 20})
    return pd.DataFrame(rows)


@pytest.fixture
def lake(tmp_path):
    """Hive partitions by month; each file has one row group per week."""
    root = tmp_path / "touchpoints"
    for month, days in ((1, range(0, 28)), (2, range(31, 59)), (3, range(60, 88))):
        d = root / f"month={month}"
        d.mkdir(parents=True)
        pq.write_table(pa.Table.from_pandas(touches(days), preserve_index=False), d / "part-0.parquet",
                       row_group_size=14)  # 7 days x 2 customers
    (root / "_SUCCESS").write_text("")
    return root


def test_directory_glob_and_single_file_read_the_same_touchpoints(lake):
    whole = load_touchpoints(lake)
    assert len(whole) == 3 * 28 * 2
    assert list(whole.columns) == ["customer_id", "timestamp", "channel", "campaign_type", "converted", "revenue"]
    assert whole["channel"].unique().tolist() == ["google_ads"]
    by_glob = load_touchpoints(str(lake / "month=*" / "*.parquet"))
    pd.testing.assert_frame_equal(whole, by_glob)
    one = load_touchpoints(str(lake / "month=2" / "*.parquet"))
    assert one["timestamp"].min() == pd.Timestamp("2024-02-01 09:00")


def test_only_needed_columns_are_read(lake):
    frame = read_dataset(lake, "touchpoints", columns=["customer_id", "timestamp"], optional=["revenue", "nope"])
    assert list(frame.columns) == ["customer_id", "timestamp", "revenue"]


def test_date_range_is_pushed_down_to_row_groups(lake):
    full = read_dataset(lake, "touchpoints", columns=["customer_id"], date_column="timestamp")
    part = read_dataset(lake, "touchpoints", columns=["customer_id"], date_column="timestamp",
                        start="2024-02-05", end="2024-02-11")
    assert full.attrs["scan"]["row_groups"] == full.attrs["scan"]["row_groups_total"] == 12
    # Feb 5..11 lies in the row groups of Feb 1-7 and Feb 8-14 of one file: 2 of 12 read
    assert part.attrs["scan"]["row_groups"] == 2 and part.attrs["scan"]["files"] == 1
    assert part["timestamp"].min() == pd.Timestamp("2024-02-05 09:00")
    assert part["timestamp"].max() == pd.Timestamp("2024-02-11 09:00")  # a date-only end includes its day
    # the loaders apply the same range, with pushdown for datasets and after parsing for a CSV
    tp = load_touchpoints(lake, start="2024-02-05", end="2024-02-11")
    csv = lake.parent / "t.csv"
    load_touchpoints(lake).to_csv(csv, index=False)
    pd.testing.assert_frame_equal(tp, load_touchpoints(csv, start="2024-02-05", end="2024-02-11"))
    assert len(tp) == 14


def test_spend_dataset_and_range(tmp_path):
    root = tmp_path / "spend"
    for m in (1, 2):
        d = root / f"month={m}"
        d.mkdir(parents=True)
        dates = pd.date_range(f"2024-0{m}-01", periods=28, freq="D")
        pd.DataFrame({"date": dates, "channel": "google_ads", "campaign_type": "search",
                      "spend": 10.0 * m}).to_parquet(d / "p.parquet", index=False)
    spend = load_spend(root, start="2024-01-20", end="2024-02-10")
    assert spend["date"].min() == pd.Timestamp("2024-01-20") and spend["date"].max() == pd.Timestamp("2024-02-10")
    assert spend["spend"].sum() == 9 * 10.0 + 10 * 20.0


def test_load_inputs_takes_the_range_from_config(lake, tmp_path):
    cfg = OmegaConf.create({"source": "csv", "touchpoints": str(lake), "start": "2024-03-01", "end": None})
    tp = load_inputs(cfg).touchpoints
    assert tp["timestamp"].min() == pd.Timestamp("2024-03-01 09:00") and len(tp) == 56


def exact(message):
    return "^" + re.escape(message) + "$"


def test_errors_name_the_file(lake, tmp_path):
    bad = lake / "month=4"
    bad.mkdir()
    touches(range(90, 92)).drop(columns="channel").to_parquet(bad / "part-0.parquet", index=False)
    with pytest.raises(InputError, match=r"touchpoints file .*month=4/part-0\.parquet: missing column\(s\) 'channel'"):
        load_touchpoints(lake)
    (bad / "part-0.parquet").unlink()
    touches(range(90, 92)).assign(customer_id=1).to_parquet(bad / "part-0.parquet", index=False)
    with pytest.raises(InputError, match=r"month=4/part-0\.parquet: column 'customer_id' is int64, but \w*string in"):
        load_touchpoints(lake)
    (bad / "part-0.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"not readable Parquet: .*month=4/part-0\.parquet"):
        load_touchpoints(lake)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=exact(f"touchpoints: no Parquet files (.parquet, .pq) match {empty}")):
        load_touchpoints(empty)


def test_range_errors():
    with pytest.raises(InputError, match=exact("data.start is not a date: 'soon'")):
        date_bounds("soon", None)
    with pytest.raises(InputError, match=exact("data.start (2024-02-01) must come before data.end (2024-01-01)")):
        date_bounds("2024-02-01", "2024-01-01")


def test_a_range_with_no_rows_says_so(lake):
    with pytest.raises(InputError, match="no rows in the date range"):
        load_touchpoints(lake, start="2025-01-01")
