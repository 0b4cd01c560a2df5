"""Every generator preset composes through Hydra and builds the world it describes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from journeynet.synthetic.config import SimConfig
from journeynet.synthetic.propagate import propagate
from journeynet.synthetic.simulate import simulate
from journeynet.synthetic.truth import removal_effects
from journeynet.synthetic.world import build_world, spend_history

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf/experiment").glob("*.yaml"))
MECHANISMS = ("capture", "seasonal", "fatigue", "harmful", "repeat")


def preset(name: str | None, **small: object) -> SimConfig:
    overrides = [f"experiment={name}"] if name else []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    kw = OmegaConf.to_container(cfg.data.synthetic, resolve=True)
    return SimConfig(**{**kw, **small})


def exact_units(cfg: SimConfig) -> tuple[pd.DataFrame, float]:
    world = build_world(cfg)
    spend = spend_history(cfg, world, np.random.default_rng(cfg.seed))
    return removal_effects(world, spend), float(propagate(world, spend).baseline.sum())


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_composes_and_generates(name: str) -> None:
    cfg = preset(name, pool=600, days=28, dark_weeks=1)
    sim = simulate(cfg, optimum=False)
    assert sim.touchpoints["converted"].sum() > 0 and len(sim.spend) == 28 * len(sim.units)


@pytest.mark.parametrize("name", MECHANISMS)
def test_single_mechanism_presets_switch_on_one_mechanism(name: str) -> None:
    cfg = preset(name)
    assert [m for m in MECHANISMS if getattr(cfg, m)] == [name]
    assert cfg.world == "netelixir"


def test_default_world_is_the_plain_netelixir_world_with_brand_capture() -> None:
    cfg = preset(None)
    assert (cfg.world, cfg.pool, cfg.days, cfg.brand, cfg.capture) == ("netelixir", 60_000, 182, True, True)
    assert not any(getattr(cfg, m) for m in MECHANISMS if m != "capture")
    units, _ = exact_units(SimConfig(days=56))
    assert len(units) == 10 and (units["effect"] > -1e-9).all()


def test_pmax_world_captures_about_a_third_of_baseline_sessions() -> None:
    units, baseline = exact_units(preset("pmax_capture", days=91))
    pmax = units.set_index("campaign_type").loc["performance_max"]
    assert 0.25 < pmax["captured_conversions"] / baseline < 0.42
    assert pmax["captured_conversions"] > 5 * pmax["effect"]


def test_brand_trap_brand_takes_a_quarter_of_spend_and_tops_last_touch_roas() -> None:
    cfg = preset("brand_trap", pool=15_000, days=91)
    sim = simulate(cfg, optimum=False)
    units = pd.DataFrame(sim.truth["units"])
    spend = sim.spend_matrix.mean(axis=0)
    brand = units.index[(units["channel"] == "google_ads") & (units["campaign_type"] == "brand_search")][0]
    assert 0.2 < spend[brand] / spend.sum() < 0.28
    assert 0.003 < units.loc[brand, "share"] < 0.02
    lt = np.array([sim.truth["last_touch"].get(f"{c}/{k}", 0.0) for c, k in zip(units.channel, units.campaign_type,
                                                                                 strict=True)])
    roas = lt / spend
    assert units.loc[int(np.argmax(roas)), "role"] == "brand"  # brand search tops last-touch ROAS
    assert roas[brand] > 2 * roas[(units["role"] != "brand").to_numpy()].max()


@pytest.mark.parametrize("name,unit", [("holiday_retailer", "retargeting"), ("many_units", "interstitial")])
def test_issue_worlds_hold_a_harmful_unit(name: str, unit: str) -> None:
    cfg = preset(name, days=91)
    assert cfg.seasonal and cfg.fatigue and cfg.harmful and cfg.capture
    units, _ = exact_units(cfg)
    harmful = units.set_index("campaign_type").loc[unit]
    assert harmful["role"] == "harmful" and harmful["effect"] < 0
    if name == "many_units":
        assert len(units) == 15 and units["channel"].nunique() == 6


def test_data_config_lists_every_simconfig_field() -> None:
    from dataclasses import fields

    listed = set(OmegaConf.load(ROOT / "conf/data/synthetic.yaml").synthetic)
    assert listed == {f.name for f in fields(SimConfig)}
