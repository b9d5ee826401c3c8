"""Tests of the SYNTHETIC demo world (fluxcore.demo)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from fluxcore import demo
from fluxcore.aridity import aridity_zone, extraterrestrial_radiation, site_aridity_from_daily
from fluxcore.dataset import FluxDataset
from fluxcore.processmodel import run_process_model
from fluxcore.variables import DAILY_DRIVERS, EXTRA_DRIVERS, STATIC, TARGETS, VARIABLES

#: the demo world has the paper's daily drivers, not the extra ones of real data
PAPER_DAILY = tuple(v for v in DAILY_DRIVERS if v not in EXTRA_DRIVERS)

_TIMING: dict[str, float] = {}


@pytest.fixture(scope="module")
def world() -> demo.DemoWorld:
    t0 = time.perf_counter()
    w = demo.simulate_world(0)
    _TIMING["simulate"] = time.perf_counter() - t0
    return w


@pytest.fixture(scope="module")
def ds(world) -> FluxDataset:
    return world.dataset


def test_generation_time_bound(world):
    # generous bound for a busy 2-core machine; the 10 s target is measured in the report
    assert _TIMING["simulate"] < 30.0


def test_dataset_contract(ds):
    assert isinstance(ds, FluxDataset)
    assert ds.name == "demo" and ds.source == "demo" and ds.synthetic is True
    assert "SYNTHETIC" in ds.label
    assert ds.meta["seed"] == 0 and ds.meta["n_years"] == 2
    assert ds.meta["generator_version"] == demo.GENERATOR_VERSION
    assert "SYNTHETIC" in ds.meta["note"]
    d = ds.daily
    assert d["DATE"].dtype == np.dtype("datetime64[ns]")
    assert pd.api.types.is_string_dtype(d["SITE_ID"])
    assert all(d[c].dtype in (np.float64, np.float32) for c in d.columns if c not in ("SITE_ID", "DATE"))
    assert d.equals(d.sort_values(["SITE_ID", "DATE"]).reset_index(drop=True))
    assert len(d) == 190 * 730 and ds.n_sites == 190
    # all 14 paper variables and 3 targets
    assert set(ds.variables) == set(PAPER_DAILY) | set(STATIC) | set(TARGETS)
    s = ds.sites
    assert s.index.tolist() == [f"SYN-{i:03d}" for i in range(1, 191)]
    assert s["NAME"].str.match(r"^Synthetic site \d{3} \((arid|semi-arid|semi-humid|humid), [A-Z]{2,3}\)$").all()
    assert s.crs.to_epsg() == 4326


def test_zone_counts_recomputed_from_daily(ds):
    ai = site_aridity_from_daily(ds.daily, ds.sites["LAT"])
    zones = pd.Series(aridity_zone(ai.to_numpy()), index=ai.index)
    counts = zones.value_counts().to_dict()
    assert counts == {"arid": 15, "semi-arid": 44, "semi-humid": 20, "humid": 111}
    assert ds.zone_counts() == {"arid": 15, "semi-arid": 44, "semi-humid": 20, "humid": 111}
    np.testing.assert_allclose(ai.reindex(ds.sites.index), ds.sites["ARIDITY_INDEX"], rtol=1e-12)
    assert (zones.reindex(ds.sites.index) == ds.sites["ARIDITY_ZONE"]).all()
    # each zone's sites are inside its drawing range, away from the zone bounds
    for z, (lo, hi) in demo.AI_TARGET_RANGES.items():
        a = ds.sites.loc[ds.sites["ARIDITY_ZONE"] == z, "ARIDITY_INDEX"]
        assert a.between(lo - 1e-9, hi + 1e-9).all()


def test_physical_ranges(ds):
    d = ds.daily
    for v in PAPER_DAILY + TARGETS:
        x = d[v].dropna()
        assert len(x) > 0.8 * len(d), v
        assert x.between(VARIABLES[v].valid_min, VARIABLES[v].valid_max).all(), v
    for v in STATIC:
        assert ds.sites[v].notna().all()
        assert ds.sites[v].between(VARIABLES[v].valid_min, VARIABLES[v].valid_max).all(), v
    np.testing.assert_allclose(ds.sites[["CLAY", "SAND", "SILT"]].sum(axis=1), 100.0, atol=1e-9)
    assert (d["TMIN"].dropna() <= d["TA"].reindex(d["TMIN"].dropna().index)).all()
    assert (d["TMAX"] >= d["TMIN"]).where(d["TMAX"].notna() & d["TMIN"].notna(), True).all()
    # SW_IN never exceeds extraterrestrial radiation
    ra = extraterrestrial_radiation(d["SITE_ID"].map(ds.sites["LAT"]).to_numpy(dtype=float),
                                    d["DATE"].dt.day_of_year.to_numpy()) / 0.0864
    ok = d["SW_IN"].notna().to_numpy()
    assert (d["SW_IN"].to_numpy()[ok] <= ra[ok] + 1e-9).all()


def test_positions_plausible(ds):
    s = ds.sites
    assert s["LAT"].between(-56, 72).all() and s["LON"].between(-180, 180).all()
    boxes = {r.name: r for r in demo.REGIONS}
    for _, row in s.iterrows():
        r = boxes[row["REGION"]]
        assert r.lat[0] <= row["LAT"] <= r.lat[1] and r.lon[0] <= row["LON"] <= r.lon[1]
        assert r.zone == row["ARIDITY_ZONE"]
        assert row["IGBP"] in r.igbp
    arid = s.loc[s["ARIDITY_ZONE"] == "arid", "IGBP"]
    assert set(arid) <= {"OSH", "GRA", "SAV"}


def test_fluxes_truth_and_noise(world, ds):
    tr = world.truth
    assert (tr["GPP"] >= 0).all() and (tr["ER"] > 0).all()
    np.testing.assert_allclose(tr["NEE"], tr["ER"] - tr["GPP"], atol=1e-12)
    d = ds.daily
    np.testing.assert_allclose(d["NEE"], d["ER"] - d["GPP"], atol=1e-9)
    ok = d["GPP"].notna()
    resid = (d["GPP"] - tr["GPP"])[ok]
    assert abs(resid.mean()) < 0.1 and 0.1 < resid.std() < 1.5
    # heteroscedastic: larger errors where fluxes are larger
    big = (tr["GPP"] > tr["GPP"].quantile(0.8))[ok]
    assert resid[big].std() > 1.5 * resid[~big].std()
    # the truth is the public process model run on the complete drivers
    again = run_process_model(world.drivers, ds.sites, world.params)
    np.testing.assert_allclose(again[["GPP", "ER", "NEE"]].to_numpy(), tr.to_numpy())


def test_sites_differ(world, ds):
    eps = np.array([p.eps_max for p in world.params.values()])
    assert eps.std() > 0.05
    mean_gpp = ds.daily.groupby("SITE_ID")["GPP"].mean()
    by_zone = mean_gpp.groupby(ds.sites["ARIDITY_ZONE"]).mean()
    assert by_zone["arid"] < by_zone["semi-arid"] < by_zone["humid"]
    assert set(ds.meta["process_params"]) == set(ds.sites.index)


def test_lai_seasonality(ds):
    d = ds.daily
    lai = d.groupby("SITE_ID")["LAI"]
    amp = lai.quantile(0.95) - lai.quantile(0.05)
    rel = amp / lai.mean()
    igbp = ds.sites["IGBP"]
    # temperature-driven deciduous canopies: extratropical humid DBF and crops
    dec = igbp.index[igbp.isin(["DBF", "CRO"]) & (ds.sites["ARIDITY_ZONE"] == "humid")
                     & (ds.sites["LAT"].abs() > 25)]
    assert len(dec) > 5 and (amp[dec] > 1.0).all()
    ever = igbp.index[igbp.isin(["ENF", "EBF"])]
    assert rel[ever].median() < rel[dec].median()


def test_gaps(ds):
    d = ds.daily
    frac = d["GPP"].isna().mean()
    assert 0.03 < frac < 0.3
    na = d[["GPP", "ER", "NEE"]].isna().to_numpy()
    assert (na.all(axis=1) == na.any(axis=1)).all()  # targets gap together
    # at least some multi-week gaps
    runs = []
    for _, g in d.groupby("SITE_ID")["GPP"]:
        m = g.isna().to_numpy().astype(int)
        edges = np.diff(np.concatenate([[0], m, [0]]))
        runs.extend(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))
    assert max(runs) >= 14 and sum(r >= 14 for r in runs) >= 20
    for v in PAPER_DAILY:
        assert 0 < d[v].isna().mean() < 0.03, v


def test_determinism_small():
    a = demo.generate_demo(seed=3, n_years=1)
    b = demo.generate_demo(seed=3, n_years=1)
    c = demo.generate_demo(seed=4, n_years=1)
    assert a.fingerprint() == b.fingerprint()
    pd.testing.assert_frame_equal(a.daily, b.daily)
    assert a.fingerprint() != c.fingerprint()
    assert len(a.daily) == 190 * 365
    assert a.zone_counts() == c.zone_counts() == {"arid": 15, "semi-arid": 44, "semi-humid": 20, "humid": 111}


def test_cache_roundtrip_and_corruption(tmp_path, monkeypatch):
    t0 = time.perf_counter()
    first = demo.load_demo(seed=5, n_years=1, cache_dir=tmp_path)
    t1 = time.perf_counter()
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and demo.GENERATOR_VERSION in entries[0].name
    assert "seed5" in entries[0].name and "years1" in entries[0].name
    cached = demo.load_demo(seed=5, n_years=1, cache_dir=tmp_path)
    t_cached = time.perf_counter() - t1
    assert cached.fingerprint() == first.fingerprint()
    pd.testing.assert_frame_equal(cached.daily, first.daily)
    assert cached.synthetic and cached.name == "demo" and cached.meta["seed"] == 5
    assert cached.meta["process_params"] == first.meta["process_params"]
    assert t_cached < 5.0 and t_cached < (t1 - t0)
    # a corrupt cache is regenerated (and rewritten)
    (entries[0] / "daily.parquet").write_bytes(b"not parquet")
    assert demo.load_demo(seed=5, n_years=1, cache_dir=tmp_path).fingerprint() == first.fingerprint()
    assert demo._read_cache(entries[0], 5, 1) is not None
    # another seed is another entry
    assert demo._cache_path(tmp_path, 6, 1, 2013) != entries[0]
    # $FLUXCORE_CACHE is the default location
    monkeypatch.setenv("FLUXCORE_CACHE", str(tmp_path / "env"))
    assert demo.default_cache_dir() == tmp_path / "env"


def test_cached_default_world_equals_generated(tmp_path, ds):
    """load_demo() of the default world has the fingerprint of generate_demo()."""
    demo._write_cache(demo._cache_path(tmp_path, 0, 2, 2013), ds)
    assert demo.load_demo(cache_dir=tmp_path).fingerprint() == ds.fingerprint()


# ------------------------------------------------------------------ hidden ecophysiology
def test_hidden_traits_grow_with_climate_novelty(world):
    tr = pd.DataFrame(world.dataset.meta["hidden_traits"]).T.astype(float)
    assert len(tr) == 190 and tr["novelty_quantile"].between(0, 1).all()
    assert tr["log_eps_deviation"].abs().max() <= demo.TRAIT_MAX + 1e-12
    typical = tr[tr["novelty_quantile"] < 0.3]["log_eps_deviation"].abs().mean()
    unusual = tr[tr["novelty_quantile"] > 0.7]["log_eps_deviation"].abs().mean()
    assert unusual > 4 * typical  # unusual climates carry the large hidden deviations
    # the deviations are in the parameters the process model used
    e0 = pd.Series({s: p.e0 for s, p in world.params.items()})
    ratio = np.log(e0 / demo.default_params("GRA").e0)
    np.testing.assert_allclose(ratio.reindex(tr.index), tr["log_e0_deviation"], atol=1e-12)


def test_climate_novelty_of_an_outlier():
    rng = np.random.default_rng(0)
    ta = rng.normal(10, 1, (5, 50))
    ta[4] += 15  # one site much warmer than the others
    nov = demo.climate_novelty([f"s{i}" for i in range(5)], {"TA": ta})
    assert nov.idxmax() == "s4"


@pytest.mark.slow
def test_demo_world_teaches_negative_distance_r2_correlation(ds, tmp_path):
    """LOSO with the fast default learners mlr and rf on 50 demo sites: towers far from their
    training towers are predicted worse (negative Spearman correlation of D_mean with R²)."""
    from threadpoolctl import threadpool_limits

    from fluxcore.config import RunConfig
    from fluxcore.heterogeneity import distance_skill, run_distances
    from fluxcore.loso import load_run, run_loso

    rng = np.random.default_rng(0)
    sub = ds.subset(sites=sorted(rng.choice(ds.site_ids, 50, replace=False).tolist()))
    cfg = RunConfig(learners=["mlr", "rf"], targets=["GPP"], params={"rf": {"n_estimators": 30}})
    with threadpool_limits(1):
        run = load_run(run_loso(cfg, dataset=sub, runs_dir=tmp_path))
    t = distance_skill(run.metrics, run_distances(run, sub)).set_index(["learner", "zone"])
    assert t.loc[("mlr", "all"), "spearman_rho"] < -0.3 and t.loc[("mlr", "all"), "spearman_p"] < 0.05
    assert t.loc[("rf", "all"), "spearman_rho"] < -0.2 and t.loc[("rf", "all"), "spearman_p"] < 0.05
