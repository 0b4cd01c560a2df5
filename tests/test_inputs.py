import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from journeynet.data.inputs import (
    check_paid_channels,
    load_inputs,
    load_spend,
    load_touchpoints,
    read_table,
)
from journeynet.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TOUCH = (
    "customer_id,timestamp,channel,campaign_type,converted,revenue\n"
    "u2,2024-01-02 09:00:00,Google Ads,Search,1,25.5\n"
    "u1,2024-01-01 08:00:00,email,,0,\n"
    "u1,2024-01-01 09:30:00,Meta Ads,Social,True,10\n"
)
SPEND = (
    "date,channel,campaign_type,spend,impressions,clicks,conversions,revenue\n"
    "2024-01-01,google_ads,search,10.5,100,5,1,20\n"
    "2024-01-01,google_ads,search,4.5,50,2,0,0\n"
    "2024-01-02,meta_ads,social,3,,,,\n"
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def exact(message):
    return "^" + re.escape(message) + "$"


def test_touchpoints_are_canonical_sorted_and_normalized(tmp_path):
    tp = load_touchpoints(write(tmp_path, "t.csv", TOUCH))
    assert list(tp.columns) == [
        "customer_id", "timestamp", "channel", "campaign_type", "converted", "revenue"]
    assert tp["customer_id"].tolist() == ["u1", "u1", "u2"]
    assert tp["channel"].tolist() == ["email", "meta_ads", "google_ads"]
    assert tp["campaign_type"].tolist() == ["", "social", "search"]
    assert tp["converted"].tolist() == [0, 1, 1] and tp["converted"].dtype == "int8"
    assert tp["revenue"].tolist() == [0.0, 10.0, 25.5]
    assert tp["timestamp"].dtype == "datetime64[ns]"


def test_csv_and_parquet_give_the_same_frame(tmp_path):
    csv = write(tmp_path, "t.csv", TOUCH)
    pd.read_csv(csv).to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(load_touchpoints(csv), load_touchpoints(tmp_path / "t.parquet"))


def test_event_type_layout_marks_purchases(tmp_path):
    path = write(tmp_path, "events.csv", (
        "user,ts,source,event_type\n"
        "a,2024-03-01T10:00:00Z,email,page_view\n"
        "a,2024-03-01T10:05:00Z,google_ads,purchase\n"
    ))
    tp = load_touchpoints(
        path, columns={"customer_id": "user", "timestamp": "ts", "channel": "source"},
        conversion={"event_column": "event_type", "event_value": "purchase"})
    assert tp["converted"].tolist() == [0, 1]
    assert tp["campaign_type"].tolist() == ["", ""]
    assert tp["timestamp"].tolist() == [pd.Timestamp("2024-03-01 10:00"),
                                        pd.Timestamp("2024-03-01 10:05")]


def test_hackathon_layout_through_the_netelixir_preset(tmp_path):
    path = write(tmp_path, "website-landings.csv", (
        "User Id,Website Landing Time,Is Converted,Source,Channel,Campaign Type\n"
        "17,2024-02-01 12:00:00,False,google / cpc,Google Ads,Search Network\n"
        "17,2024-02-02 12:00:00,True,bing / cpc,Bing Ads,Search & content\n"
        "18,2024-02-03 12:00:00,False,newsletter,Email,\n"
    ))
    cfg = OmegaConf.load(ROOT / "conf/data/netelixir.yaml")
    cfg.touchpoints = str(path)
    inputs = load_inputs(cfg)
    tp = inputs.touchpoints
    assert tp["customer_id"].tolist() == ["17", "17", "18"]
    assert tp["channel"].tolist() == ["google_ads", "microsoft_ads", "email"]
    assert tp["campaign_type"].tolist() == ["search_network", "search_content", ""]
    assert tp["converted"].tolist() == [0, 1, 0]
    assert inputs.test_touchpoints is None and inputs.truth is None


def test_netelixir_preset_spend_totals():
    cfg = OmegaConf.load(ROOT / "conf/data/netelixir.yaml")
    spend = load_spend(sources=OmegaConf.to_container(cfg.spend_sources),
                       columns=cfg.spend_columns)
    assert spend["spend"].sum() == pytest.approx(1_060_403.50, abs=0.005)
    by_channel = spend.groupby("channel")["spend"].sum()
    assert by_channel.to_dict() == pytest.approx(
        {"google_ads": 852_805.30, "microsoft_ads": 187_918.80, "meta_ads": 19_679.40}, abs=0.005)
    assert (spend["date"].min(), spend["date"].max()) == (
        pd.Timestamp("2024-01-01"), pd.Timestamp("2024-06-30"))
    units = spend[["channel", "campaign_type"]].drop_duplicates()
    assert sorted(map(tuple, units.to_numpy())) == [
        ("google_ads", "cross_network"), ("google_ads", "display_network"),
        ("google_ads", "search_network"), ("google_ads", "youtube"), ("meta_ads", "social"),
        ("microsoft_ads", "audience"), ("microsoft_ads", "performance_max"),
        ("microsoft_ads", "search_content"), ("microsoft_ads", "shopping")]


def test_spend_is_summed_per_day_and_unit_with_absent_metrics_nan(tmp_path):
    spend = load_spend(write(tmp_path, "s.csv", SPEND))
    assert spend["spend"].tolist() == [15.0, 3.0]
    assert spend["clicks"].tolist()[0] == 7.0 and pd.isna(spend["clicks"].tolist()[1])
    minimal = load_spend(write(tmp_path, "m.csv", "date,channel,campaign_type,spend\n"
                                                  "2024-01-01,google_ads,search,1\n"))
    assert minimal[["impressions", "revenue"]].isna().all().all()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("t.csv", "", "touchpoints file is empty (0 bytes): {p}"),
    ("t.csv", "customer_id,timestamp,channel,converted\n",
     "touchpoints file has a header but no rows: {p}"),
    ("t.parquet", "not parquet", "touchpoints file is not readable Parquet: {p} ("),
    ("t.xlsx", "x", "touchpoints file has unsupported extension: {p} "
                    "(use .csv, .csv.gz, .parquet or .pq)"),
], ids=["empty", "header_only", "bad_parquet", "bad_extension"])
def test_unreadable_files(tmp_path, name, text, message):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError, match="^" + re.escape(message.format(p=path))):
        read_table(path, "touchpoints")


def test_missing_file_names_the_path():
    with pytest.raises(InputError, match=exact("spend file not found: nowhere/s.csv")):
        load_spend("nowhere/s.csv")


def test_relative_preset_paths_resolve_against_the_project_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    df = read_table("data/netelixir_ads_2024/metaads-performance.csv", "spend")
    assert len(df) == 182


BAD_TOUCH = [
    ("customer_id,timestamp,channel\nu1,2024-01-01,email\n",
     "touchpoints file {p}: missing column(s) 'converted' (for converted); "
     "expected ['converted'], found ['customer_id', 'timestamp', 'channel']"),
    ("user,timestamp,converted\nu1,2024-01-01,1\n",
     "touchpoints file {p}: missing column(s) 'customer_id' (for customer_id), "
     "'channel' (for channel); expected ['customer_id', 'timestamp', 'channel'], "
     "found ['user', 'timestamp', 'converted']"),
    ("customer_id,timestamp,channel,converted\nu1,yesterday,email,1\nu2,soon,email,0\n",
     "touchpoints file {p}: column 'timestamp' has timestamps in no known format (first: 'yesterday' "
     "at data row 1); set data.timestamp_format (e.g. '%d/%m/%Y %H:%M') or data.dayfirst=true"),
    ("customer_id,timestamp,channel,converted\nu1,2024-01-01,email,2\n",
     "touchpoints file {p}: column 'converted' must be 0/1 or true/false (first bad value: '2')"),
    ("customer_id,timestamp,channel,converted\nu1,2024-01-01,email,0\n",
     "touchpoints file {p}: column 'converted' marks no conversions"),
    ("customer_id,timestamp,channel,converted\nu1,2024-01-01,email,1\n,2024-01-02,email,0\n",
     "touchpoints file {p}: column 'customer_id' has 1 empty customer ids (first at data row 2)"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TOUCH, ids=[
    "missing_flag", "missing_two", "bad_timestamps", "bad_flag", "no_conversions", "empty_id"])
def test_touchpoint_validation_messages(tmp_path, text, message):
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError, match=exact(message.format(p=path))):
        load_touchpoints(path)


def test_event_layout_without_purchases_says_so(tmp_path):
    path = write(tmp_path, "e.csv", "customer_id,timestamp,channel,event_type\n"
                                    "u1,2024-01-01,email,page_view\n")
    with pytest.raises(InputError, match=exact(
            f"touchpoints file {path}: column 'event_type' marks no conversions")):
        load_touchpoints(path, conversion={"event_column": "event_type", "event_value": "buy"})


def test_exact_duplicate_rows_are_dropped_with_a_warning(tmp_path, caplog):
    text = TOUCH + "u2,2024-01-02 09:00:00,Google Ads,Search,1,25.5\n"
    with caplog.at_level(logging.WARNING, logger="journeynet.data.inputs"):
        tp = load_touchpoints(write(tmp_path, "t.csv", text))
    assert len(tp) == 3
    assert "dropped 1 exact duplicate rows" in caplog.text


BAD_SPEND = [
    ("date,channel,campaign_type,spend\n2024-01-01,g,s,-1\n2024-01-02,g,s,-2\n",
     "spend file {p}: column 'spend' has 2 negative values (first: -1 on 2024-01-01, g/s)"),
    ("date,channel,campaign_type,spend\n2024-01-01,g,s,0\n",
     "spend data ({p}): column 'spend' is zero on every row"),
    ("date,channel,campaign_type,spend\n2024-01-01,g,s,abc\n",
     "spend file {p}: column 'spend' has 1 non-numeric values (first: 'abc')"),
    ("date,channel,campaign_type,spend\nnot a date,g,s,1\n",
     "spend file {p}: column 'date' has dates in no known format (first: 'not a date' at data row 1); "
     "write the dates as YYYY-MM-DD"),
    ("date,channel,spend\n2024-01-01,g,1\n",
     "spend file {p}: missing column(s) 'campaign_type' (for campaign_type); "
     "expected ['date', 'spend', 'channel', 'campaign_type'], found ['date', 'channel', 'spend']"),
]


@pytest.mark.parametrize(("text", "message"), BAD_SPEND, ids=[
    "negative", "all_zero", "non_numeric", "bad_date", "missing_column"])
def test_spend_validation_messages(tmp_path, text, message):
    path = write(tmp_path, "s.csv", text)
    with pytest.raises(InputError, match=exact(message.format(p=path))):
        load_spend(path)


def test_paid_units_missing_from_journeys_are_reported(tmp_path, caplog):
    tp = load_touchpoints(write(tmp_path, "t.csv", TOUCH))
    spend = load_spend(write(tmp_path, "s.csv", SPEND.replace("meta_ads,social", "meta_ads,video")))
    with caplog.at_level(logging.WARNING, logger="journeynet.data.inputs"):
        assert check_paid_channels(tp, spend) == ["meta_ads/video"]
    assert "meta_ads/video" in caplog.text


def test_load_inputs_requires_touchpoints():
    cfg = OmegaConf.load(ROOT / "conf/data/csv.yaml")
    with pytest.raises(InputError, match=exact(
            "data.touchpoints is not set: pass data.touchpoints=PATH")):
        load_inputs(cfg)


def test_load_inputs_reads_all_files_of_the_csv_preset(tmp_path):
    cfg = OmegaConf.load(ROOT / "conf/data/csv.yaml")
    cfg.touchpoints = str(write(tmp_path, "t.csv", TOUCH))
    cfg.test_touchpoints = cfg.touchpoints
    cfg.spend = str(write(tmp_path, "s.csv", SPEND))
    inputs = load_inputs(cfg)
    assert len(inputs.touchpoints) == 3 and len(inputs.test_touchpoints) == 3
    assert inputs.spend["spend"].sum() == 18.0


def test_spend_needs_exactly_one_of_file_or_sources(tmp_path):
    message = "spend: set exactly one of data.spend=PATH or data.spend_sources"
    with pytest.raises(InputError, match=exact(message)):
        load_spend()
    path = write(tmp_path, "s.csv", SPEND)
    with pytest.raises(InputError, match=exact(message)):
        load_spend(path, sources=[{"path": str(path)}])


def test_gzipped_csv_reads_like_plain_csv(tmp_path):
    plain = write(tmp_path, "t.csv", TOUCH)
    pd.read_csv(plain).to_csv(tmp_path / "t.csv.gz", index=False)
    pd.testing.assert_frame_equal(load_touchpoints(plain), load_touchpoints(tmp_path / "t.csv.gz"))


def test_synthetic_source_returns_simulated_frames_and_truth():
    from dataclasses import fields

    from journeynet.causal.sample import SimConfig

    small = {k: v for k, v in {"pool": 1500, "days": 28}.items()
             if k in {f.name for f in fields(SimConfig)}}
    inputs = load_inputs({"source": "synthetic", "synthetic": small})
    assert {"customer_id", "timestamp", "channel", "campaign_type", "converted"} <= set(
        inputs.touchpoints.columns)
    assert inputs.touchpoints["converted"].sum() > 0
    assert inputs.spend is not None and isinstance(inputs.truth, dict)


def test_blank_campaign_type_joins_a_single_campaign_channel() -> None:
    from journeynet.data.inputs import join_single_campaign

    tp = pd.DataFrame({"customer_id": ["a", "a", "b"], "channel": ["meta_ads", "direct", "google_ads"],
                       "campaign_type": ["", "", ""]})
    spend = pd.DataFrame({"channel": ["meta_ads", "google_ads", "google_ads"],
                          "campaign_type": ["social", "search", "shopping"]})
    out = join_single_campaign(tp, spend)
    # meta has one campaign type: it joins; direct is unpaid; google is ambiguous and stays blank
    assert out["campaign_type"].tolist() == ["social", "", ""]


def mixed_dates(first_dayfirst: bool) -> str:
    """ISO timestamps with a dd/mm/YYYY HH:MM one in every third row, as a real export had."""
    rows = ["customer_id,timestamp,channel,converted"]
    for i in range(9):
        day = 12 - i  # 12/05 .. 04/05: each reads as a valid month-first date too
        iso, dmy = f"2024-05-{day:02d} 10:00:00", f"{day:02d}/05/2024 10:00"
        use_dmy = i % 3 == (0 if first_dayfirst else 2)
        rows.append(f"u{i},{dmy if use_dmy else iso},email,{i % 2}")
    return "\n".join(rows) + "\n"


def test_mixed_date_formats_stop_at_the_first_row_in_another_format(tmp_path):
    path = write(tmp_path, "t.csv", mixed_dates(first_dayfirst=False))
    with pytest.raises(InputError, match=exact(
            f"touchpoints file {path}: column 'timestamp' data row 3 ('10/05/2024 10:00') does not match "
            "the column's format ISO8601 (ISO-8601, inferred from data row 1); 3 of 9 rows differ; "
            "set data.timestamp_format (e.g. '%d/%m/%Y %H:%M') or data.dayfirst=true")):
        load_touchpoints(path)


def test_mixed_date_formats_fail_whichever_layout_comes_first(tmp_path):
    path = write(tmp_path, "t.csv", mixed_dates(first_dayfirst=True))
    with pytest.raises(InputError, match=r"column 'timestamp' data row 2 \('2024-05-11 10:00:00'\) does not match"):
        load_touchpoints(path)


def test_declared_day_first_format_reads_every_row_the_same_way(tmp_path):
    text = "customer_id,timestamp,channel,converted\nu1,12/05/2024 10:00,email,1\nu2,01/06/2024 09:30,email,0\n"
    path = write(tmp_path, "t.csv", text)
    for kw in ({"timestamp_format": "%d/%m/%Y %H:%M"}, {"dayfirst": True}):
        tp = load_touchpoints(path, **kw).set_index("customer_id")
        assert tp.loc["u1", "timestamp"] == pd.Timestamp("2024-05-12 10:00")
        assert tp.loc["u2", "timestamp"] == pd.Timestamp("2024-06-01 09:30")
    month_first = load_touchpoints(path).set_index("customer_id")  # both layouts fit: month-first
    assert month_first.loc["u1", "timestamp"] == pd.Timestamp("2024-12-05 10:00")


def test_day_first_is_inferred_when_only_day_first_fits(tmp_path):
    text = "customer_id,timestamp,channel,converted\nu1,12/05/2024,email,1\nu2,25/05/2024,email,0\n"
    tp = load_touchpoints(write(tmp_path, "t.csv", text)).set_index("customer_id")
    assert tp.loc["u1", "timestamp"] == pd.Timestamp("2024-05-12")


def test_a_row_off_the_declared_format_is_named(tmp_path):
    text = "customer_id,timestamp,channel,converted\nu1,12/05/2024 10:00,email,1\nu2,2024-05-13 10:00,email,0\n"
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError, match=exact(
            f"touchpoints file {path}: column 'timestamp' data row 2 ('2024-05-13 10:00') does not match the "
            "column's format %d/%m/%Y %H:%M (data.timestamp_format=%d/%m/%Y %H:%M); 1 of 2 rows differ; "
            "set data.timestamp_format (e.g. '%d/%m/%Y %H:%M') or data.dayfirst=true")):
        load_touchpoints(path, timestamp_format="%d/%m/%Y %H:%M")


def test_iso_timestamps_with_and_without_time_or_offset_read_as_one_format(tmp_path):
    text = ("customer_id,timestamp,channel,converted\nu1,2024-05-12,email,1\n"
            "u2,2024-05-12T10:00:00+02:00,email,0\nu3,2024-05-12 09:30:00,email,0\n")
    tp = load_touchpoints(write(tmp_path, "t.csv", text)).set_index("customer_id")
    assert tp.loc["u2", "timestamp"] == pd.Timestamp("2024-05-12 08:00")


@pytest.mark.parametrize(("policy", "channels"), [("direct", ["email", "direct"]), ("drop", ["email"])],
                         ids=["direct", "drop"])
def test_blank_channels_become_direct_or_are_dropped(tmp_path, policy, channels):
    text = "customer_id,timestamp,channel,converted\nu1,2024-01-01,email,0\nu1,2024-01-02,,1\n"
    path = write(tmp_path, "t.csv", text)
    with pytest.raises(InputError, match=exact(
            f"touchpoints file {path}: column 'channel' has 1 empty channels (first at data row 2); "
            "set data.blank_channel=direct or drop")):
        load_touchpoints(path)
    tp = load_touchpoints(path, blank_channel=policy)
    assert tp["channel"].tolist() == channels
    assert tp["converted"].tolist() == [0, 1][:len(channels)]


def brand_world(tmp_path):
    """Journeys with Google brand search touches, a spend that has only Google's generic search."""
    rows = ["customer_id,timestamp,channel,campaign_type,converted"]
    for i in range(6):
        rows += [f"b{i},2024-01-01 08:00,google_ads,brand_search,{int(i < 4)}"]
    rows += ["s1,2024-01-01 09:00,google_ads,search,1", "e1,2024-01-01 09:00,email,,1"]
    spend = "date,channel,campaign_type,spend\n2024-01-01,google_ads,search,100\n"
    return write(tmp_path, "t.csv", "\n".join(rows) + "\n"), write(tmp_path, "s.csv", spend)


def test_journey_units_missing_from_the_spend_are_counted_loudly(tmp_path, caplog):
    tp, spend = brand_world(tmp_path)
    cfg = {"touchpoints": str(tp), "spend": str(spend)}
    with caplog.at_level(logging.WARNING, logger="journeynet.data.inputs"):
        inputs = load_inputs(cfg)
    assert inputs.unmatched.to_dict(orient="records") == [
        {"channel": "google_ads", "campaign_type": "brand_search", "touches": 6, "conversions": 4}]
    assert "google_ads/brand_search (6 touches, 4 conversions)" in caplog.text
    with pytest.raises(InputError, match=exact(
            "journey units on paid channels have no spend, so they would count as unpaid and get no "
            "attribution or plan: google_ads/brand_search (6 touches, 4 conversions); map them with "
            "data.campaign_map or add their spend")):
        load_inputs({**cfg, "strict_units": True})


def test_declared_paid_channels_are_checked_against_the_journeys(tmp_path):
    tp, spend = brand_world(tmp_path)
    assert load_inputs({"touchpoints": str(tp), "paid_channels": ["Google Ads"]}).paid_channels == ["google_ads"]
    with pytest.raises(InputError, match=exact(
            "data.paid_channels names ['tiktok'], which no touchpoint has (channels: ['email', 'google_ads'])")):
        load_inputs({"touchpoints": str(tp), "paid_channels": ["tiktok"]})
    inputs = load_inputs({"touchpoints": str(tp), "spend": str(spend), "paid_channels": ["email"]})
    assert ("email", "") in set(zip(inputs.unmatched["channel"], inputs.unmatched["campaign_type"], strict=True))


def test_netelixir_without_landings_generates_them_in_the_hackathon_layout(tmp_path, caplog):
    cfg = OmegaConf.load(ROOT / "conf/data/netelixir.yaml")
    cfg.generate = {"path": str(tmp_path / "website-landings.csv"), "pool": 3000, "seed": 0}
    with caplog.at_level(logging.WARNING):
        inputs = load_inputs(cfg)
    raw = pd.read_csv(tmp_path / "website-landings.csv", keep_default_na=False)
    assert list(raw.columns) == ["User Id", "Website Landing Time", "Is Converted", "Source", "Channel",
                                 "Campaign Type"]
    assert {"Google", "Meta", "Microsoft"} <= set(raw["Channel"])
    assert (raw.loc[raw["Channel"] == "Meta", "Campaign Type"] == "").all()  # as in Meta's export
    assert "generated" in caplog.text and "website-landings.csv" in caplog.text
    # through the preset's mapping every paid touch joins one of the exports' nine campaign types
    spent = set(zip(inputs.spend["channel"], inputs.spend["campaign_type"], strict=True))
    tp = inputs.touchpoints
    paid = tp[tp["channel"].isin(["google_ads", "meta_ads", "microsoft_ads"])]
    assert set(zip(paid["channel"], paid["campaign_type"], strict=True)) <= spent and len(paid) > 100
    assert inputs.unmatched.empty and tp["converted"].sum() > 0
