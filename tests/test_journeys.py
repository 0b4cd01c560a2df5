import numpy as np
import pandas as pd
import pytest

from journeynet.data.journeys import Journeys, Vocab, build_journeys, split_journeys, split_keys


def touches(rows):
    """rows: (customer, 'YYYY-mm-dd HH:MM', channel, campaign, converted)."""
    df = pd.DataFrame(rows, columns=["customer_id", "timestamp", "channel", "campaign_type",
                                     "converted"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["converted"] = df["converted"].astype("int8")
    df["revenue"] = df["converted"] * 10.0
    return df


def journey_channels(j: Journeys, vocab: Vocab) -> list[list[str]]:
    names = np.array(vocab.channels, dtype=object)[j.channel]
    return [names[a:b].tolist() for a, b in zip(j.offsets[:-1], j.offsets[1:], strict=True)]


def build(rows, **kw):
    tp = touches(rows)
    vocab = Vocab.fit(tp)
    return build_journeys(tp, vocab, **kw), vocab


def test_single_touch_is_one_unconverted_journey():
    j, vocab = build([("a", "2024-01-01 10:00", "email", "", 0)])
    assert len(j) == 1 and j.n_touches == 1
    assert j.label.tolist() == [0] and j.position.tolist() == [0]
    assert j.log_dt_prev.tolist() == [0.0] and j.log_dt_end.tolist() == [0.0]
    assert j.customer_id.tolist() == ["a"] and j.journey.tolist() == [0]


def test_equal_timestamps_keep_file_order():
    j, vocab = build([
        ("a", "2024-01-01 10:00", "email", "", 0),
        ("a", "2024-01-01 10:00", "direct", "", 0),
        ("a", "2024-01-01 10:00", "google_ads", "search", 1),
    ])
    assert journey_channels(j, vocab) == [["email", "direct", "google_ads"]]
    assert j.label.tolist() == [1]


def test_conversion_on_first_touch_ends_the_journey():
    j, vocab = build([
        ("a", "2024-01-01 10:00", "google_ads", "search", 1),
        ("a", "2024-01-02 10:00", "email", "", 0),
    ])
    assert journey_channels(j, vocab) == [["google_ads"], ["email"]]
    assert j.label.tolist() == [1, 0] and j.journey.tolist() == [0, 1]
    assert j.revenue.tolist() == [10.0, 0.0]


def test_two_conversions_then_more_touches_give_three_journeys():
    j, vocab = build([
        ("a", "2024-01-01 00:00", "email", "", 0),
        ("a", "2024-01-01 01:00", "google_ads", "search", 1),
        ("a", "2024-01-02 00:00", "meta_ads", "social", 0),
        ("a", "2024-01-02 03:00", "direct", "", 1),
        ("a", "2024-01-05 00:00", "email", "", 0),
        ("b", "2024-01-01 00:00", "direct", "", 0),
    ])
    assert journey_channels(j, vocab) == [
        ["email", "google_ads"], ["meta_ads", "direct"], ["email"], ["direct"]]
    assert j.label.tolist() == [1, 1, 0, 0]
    assert j.customer_id.tolist() == ["a", "a", "a", "b"]
    assert j.journey.tolist() == [0, 1, 2, 0]
    # 1 hour between the first two touches; the last touch is the journey's end.
    np.testing.assert_allclose(j.log_dt_prev[:2], [0.0, np.log1p(1.0)], rtol=1e-6)
    np.testing.assert_allclose(j.log_dt_end[:2], [np.log1p(1.0), 0.0], rtol=1e-6)


def test_silence_longer_than_lookback_splits_without_conversion():
    j, vocab = build([
        ("a", "2024-01-01", "email", "", 0),
        ("a", "2024-01-31", "direct", "", 0),  # exactly 30 days: same journey
        ("a", "2024-03-15", "google_ads", "search", 1),  # 44 days later: new journey
    ], lookback_days=30)
    assert journey_channels(j, vocab) == [["email", "direct"], ["google_ads"]]
    assert j.label.tolist() == [0, 1]


def test_truncation_keeps_the_most_recent_touches():
    rows = [("a", f"2024-01-01 {h:02d}:00", ch, "", 0)
            for h, ch in enumerate(["email", "direct", "referral", "organic_search"])]
    rows[-1] = rows[-1][:4] + (1,)
    j, vocab = build(rows, max_len=2)
    assert journey_channels(j, vocab) == [["referral", "organic_search"]]
    assert j.position.tolist() == [0, 1]
    assert j.lengths.tolist() == [2] and j.label.tolist() == [1]
    assert pd.Timestamp(int(j.time[0])) == pd.Timestamp("2024-01-01 02:00")


def test_unsorted_input_is_ordered_by_customer_and_time():
    j, vocab = build([
        ("b", "2024-01-02", "direct", "", 0),
        ("a", "2024-01-03", "google_ads", "search", 1),
        ("a", "2024-01-01", "email", "", 0),
    ])
    assert j.customer_id.tolist() == ["a", "b"]
    assert journey_channels(j, vocab) == [["email", "google_ads"], ["direct"]]


def test_unknown_names_encode_to_1_and_empty_campaign_is_known():
    tp = touches([("a", "2024-01-01", "email", "", 0), ("a", "2024-01-02", "google_ads",
                                                         "search", 1)])
    vocab = Vocab.fit(tp)
    assert vocab.channels[:2] == ["<pad>", "<unk>"]
    assert vocab.encode_campaigns(["", "search", "tiktok"]).tolist() == [
        vocab.campaign_types.index(""), vocab.campaign_types.index("search"), 1]
    new = touches([("z", "2024-02-01", "tiktok_ads", "video", 1)])
    j = build_journeys(new, vocab)
    assert j.channel.tolist() == [1] and j.campaign.tolist() == [1] and j.unit.tolist() == [1]


def test_vocab_json_round_trip_encodes_the_same(tmp_path):
    tp = touches([("a", "2024-01-01", "email", "", 0), ("a", "2024-01-02", "google_ads",
                                                         "search", 1)])
    spend = pd.DataFrame({"channel": ["meta_ads"], "campaign_type": ["social"]})
    vocab = Vocab.fit(tp, spend)
    vocab.save(tmp_path / "vocab.json")
    back = Vocab.load(tmp_path / "vocab.json")
    assert back == vocab
    assert ("meta_ads", "social") in back.units
    assert back.unit_frame().query("paid")["channel"].tolist() == ["meta_ads"]
    np.testing.assert_array_equal(build_journeys(tp, back).unit, build_journeys(tp, vocab).unit)


def many_journeys(n_customers=200, seed=1):
    rng = np.random.default_rng(seed)
    n = n_customers * 5
    tp = pd.DataFrame({
        "customer_id": rng.integers(0, n_customers, n).astype(str),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
        "channel": rng.choice(["email", "direct", "google_ads"], n),
        "campaign_type": "",
        "converted": (rng.random(n) < 0.2).astype("int8"),
        "revenue": 0.0,
    })
    return build_journeys(tp, Vocab.fit(tp))


def test_split_by_customer_puts_each_customer_in_one_split_and_is_seeded():
    j = many_journeys()
    split = split_journeys(j, 0.1, 0.2, by="customer", seed=3)
    owners = {k: set(j.customer_id[v]) for k, v in split.items()}
    assert not owners["train"] & owners["val"]
    assert not owners["train"] & owners["test"]
    assert not owners["val"] & owners["test"]
    assert sorted(np.concatenate(list(split.values()))) == list(range(len(j)))
    n_cust = len(set(j.customer_id))
    assert len(owners["test"]) == round(0.2 * n_cust)
    again = split_journeys(j, 0.1, 0.2, by="customer", seed=3)
    assert all(np.array_equal(split[k], again[k]) for k in split)


def test_split_by_time_puts_latest_journeys_in_test():
    j = many_journeys()
    split = split_journeys(j, 0.1, 0.2, by="time")
    assert j.end_time[split["test"]].min() > j.end_time[split["val"]].max()
    assert j.end_time[split["val"]].min() > j.end_time[split["train"]].max()


def test_split_rejects_fractions_that_leave_no_training_data():
    with pytest.raises(ValueError, match="data.val_fraction and data.test_fraction"):
        split_journeys(many_journeys(20), 0.5, 0.5)


def test_subset_keeps_touches_with_their_journeys():
    j, vocab = build([
        ("a", "2024-01-01 00:00", "email", "", 0),
        ("a", "2024-01-01 01:00", "google_ads", "search", 1),
        ("b", "2024-01-01 00:00", "direct", "", 0),
    ])
    sub = j.subset([1, 0])
    assert journey_channels(sub, vocab) == [["direct"], ["email", "google_ads"]]
    assert sub.customer_id.tolist() == ["b", "a"] and sub.offsets.tolist() == [0, 1, 3]


def test_split_group_keeps_a_users_journeys_together():
    # ids name a journey within a user, as in the Criteo export: u<user>_j<journey>
    rng = np.random.default_rng(0)
    users = rng.integers(0, 60, size=300)
    ids = [f"u{u}_j{i}" for i, u in enumerate(users)]
    tp = pd.DataFrame({"customer_id": ids, "timestamp": pd.Timestamp("2024-01-01"),
                       "channel": "email", "campaign_type": "", "converted": np.int8(0)})
    j = build_journeys(tp, Vocab.fit(tp))
    split = split_journeys(j, 0.1, 0.2, seed=1, group_pattern="^u[0-9]+")
    owners = {k: set(split_keys(j.customer_id, "^u[0-9]+")[v]) for k, v in split.items()}
    assert not owners["train"] & owners["test"] and not owners["val"] & owners["test"]
    assert len(owners["test"]) == round(0.2 * len(set(users)))
    # without the group, journeys of one user land on both sides
    plain = split_journeys(j, 0.1, 0.2, seed=1)
    by_user = {k: {i.split("_")[0] for i in j.customer_id[v]} for k, v in plain.items()}
    assert by_user["train"] & by_user["test"]


def test_split_group_names_the_id_it_cannot_read():
    ids = np.array(["u1_j1", "x2"], dtype=object)
    assert split_keys(ids[:1], r"^u(\d+)_").tolist() == ["1"]
    with pytest.raises(ValueError, match="does not match customer_id 'x2'"):
        split_keys(ids, "^u[0-9]+")
    with pytest.raises(ValueError, match="at most one group"):
        split_keys(ids, "(u)(1)")
