"""Tests of fluxcore.heterogeneity: descriptors, comprehensive distance, DI/AOA, distance-skill."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from factories_heterogeneity import make_world
from scipy import stats

from fluxcore import heterogeneity as het
from fluxcore.dataset import make_sites_frame
from fluxcore.errors import ConfigError


@pytest.fixture(scope="module")
def world():
    return make_world(n_sites=12, years=2, seed=3)


@pytest.fixture(scope="module")
def desc(world):
    return het.site_descriptors(world)


def _toy(values: dict[str, list[float]], sites=None) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    sites = sites or [f"T{i}" for i in range(n)]
    return pd.DataFrame(values, index=pd.Index(sites, name="SITE_ID"))


# ------------------------------------------------------------------ descriptors
def test_descriptors_one_row_per_site_groups_and_no_fluxes(world, desc):
    assert list(desc.index) == world.site_ids
    groups = desc.attrs["groups"]
    assert set(groups) == {"meteo", "rs", "static"}
    assert "TA_mean" in groups["meteo"] and "TA_amp" in groups["meteo"]
    assert "LAI_mean" in groups["rs"] and "SW_IN_amp" in groups["rs"]
    assert {"ELEV", "ASPECT_sin", "ASPECT_cos", "CLAY"} <= set(groups["static"])
    assert not any(c.split("_")[0] in ("GPP", "ER", "NEE") for c in desc.columns)
    # changing fluxes does not change descriptors
    d2 = world.daily.assign(GPP=world.daily["GPP"] * 3 + 1, ER=0.0)
    desc2 = het.site_descriptors(replace(world, daily=d2))
    pd.testing.assert_frame_equal(desc, desc2)


def test_descriptor_values_match_monthly_climatology(world, desc):
    d = world.daily[world.daily["SITE_ID"] == "S04"]
    clim = d.groupby(d["DATE"].dt.month)["TA"].mean()
    assert desc.loc["S04", "TA_mean"] == pytest.approx(clim.mean())
    assert desc.loc["S04", "TA_amp"] == pytest.approx(clim.max() - clim.min())
    asp = world.sites.loc["S04", "ASPECT"]
    assert desc.loc["S04", "ASPECT_sin"] == pytest.approx(np.sin(np.deg2rad(asp)))


def test_descriptors_short_record_gives_nan(world):
    d = world.daily
    short = d[(d["SITE_ID"] != "S00") | (d["DATE"].dt.month <= 3)]
    desc = het.site_descriptors(replace(world, daily=short.reset_index(drop=True)))
    assert np.isnan(desc.loc["S00", "TA_mean"]) and np.isfinite(desc.loc["S00", "ELEV"])
    assert np.isfinite(desc.loc["S01", "TA_mean"])


def test_descriptor_group_unknown_column():
    assert het.descriptor_group("SW_IN_amp") == "rs"
    assert het.descriptor_group("ASPECT_cos") == "static"
    with pytest.raises(ConfigError):
        het.descriptor_group("GPP_mean")


# ------------------------------------------------------------------ distances
def test_zero_distance_for_identical_sites(world):
    d = world.daily
    dup = d[d["SITE_ID"] == "S03"].assign(SITE_ID="S99")
    cat = pd.DataFrame(world.sites.drop(columns="geometry")).reset_index(drop=True)
    row = cat[cat["SITE_ID"] == "S03"].assign(SITE_ID="S99")
    ds = replace(world, daily=pd.concat([d, dup], ignore_index=True),
                 sites=make_sites_frame(pd.concat([cat, row], ignore_index=True)))
    desc = het.site_descriptors(ds)
    train = [s for s in ds.site_ids if s not in ("S03", "S99")]
    D = het.pairwise_distances(desc, train, ["S03"], ["S99"])
    assert D.iloc[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert het.pairwise_distances(desc, train).to_numpy().diagonal() == pytest.approx(0.0)


def test_symmetry_with_fixed_normalisation(desc):
    train = list(desc.index[:8])
    a, b = list(desc.index[8:]), list(desc.index[:8])
    dab = het.pairwise_distances(desc, train, a, b)
    dba = het.pairwise_distances(desc, train, b, a)
    np.testing.assert_allclose(dab.to_numpy(), dba.to_numpy().T)
    assert (dab.to_numpy() > 0).all()


def test_order_of_training_sites_does_not_matter(desc):
    train = list(desc.index[1:])
    rng = np.random.default_rng(0)
    shuffled = list(rng.permutation(train))
    for method in ("mean", "centroid", "knn"):
        assert het.comprehensive_distance(desc, train, "S00", method) == pytest.approx(
            het.comprehensive_distance(desc, shuffled, "S00", method))
    # the test site listed among the training sites is ignored
    assert het.comprehensive_distance(desc, [*train, "S00"], "S00") == pytest.approx(
        het.comprehensive_distance(desc, train, "S00"))


def test_normalisation_never_sees_the_test_site(desc):
    train = list(desc.index[1:])
    mu, sd = het.training_scaler(desc, train)
    changed = desc.copy()
    changed.loc["S00"] = changed.loc["S00"] * 10 + 100
    mu2, sd2 = het.training_scaler(changed, train)
    pd.testing.assert_series_equal(mu, mu2)
    pd.testing.assert_series_equal(sd, sd2)
    # distances among training sites unchanged, test site's distance changed
    pd.testing.assert_frame_equal(het.pairwise_distances(desc, train), het.pairwise_distances(changed, train))
    assert het.comprehensive_distance(changed, train, "S00") > het.comprehensive_distance(desc, train, "S00")


def test_group_scaling_and_weights_by_hand():
    # 4 training sites, meteo has 2 variables, rs 1, static 1
    desc = _toy({"TA_mean": [0, 1, 2, 3, 10], "P_mean": [1, 1, 2, 2, 5], "LAI_mean": [0, 2, 4, 6, 1],
                 "ELEV": [100, 200, 300, 400, 250]})
    train = ["T0", "T1", "T2", "T3"]
    tr = desc.loc[train]
    z = (desc - tr.mean()) / tr.std(ddof=1)
    dz2 = (z.loc["T4"] - z.loc["T0"]) ** 2
    dm2 = (dz2["TA_mean"] + dz2["P_mean"]) / 2
    dr2, ds2 = dz2["LAI_mean"], dz2["ELEV"]
    D = het.pairwise_distances(desc, train, ["T4"], ["T0"]).iloc[0, 0]
    assert D == pytest.approx(np.sqrt((dm2 + dr2 + ds2) / 3))
    Dw = het.pairwise_distances(desc, train, ["T4"], ["T0"], weights={"meteo": 2, "rs": 1, "static": 0}).iloc[0, 0]
    assert Dw == pytest.approx(np.sqrt((2 * dm2 + dr2) / 3))
    # duplicating a meteo variable does not give meteo more weight
    desc2 = desc.assign(TMAX_mean=desc["TA_mean"])
    D2 = het.pairwise_distances(desc2, train, ["T4"], ["T0"]).iloc[0, 0]
    dm2b = (2 * dz2["TA_mean"] + dz2["P_mean"]) / 3
    assert D2 == pytest.approx(np.sqrt((dm2b + dr2 + ds2) / 3))
    # centroid: the training mean is z = 0
    c = het.comprehensive_distance(desc, train, "T4", "centroid")
    zt = z.loc["T4"]
    assert c == pytest.approx(np.sqrt(((zt["TA_mean"] ** 2 + zt["P_mean"] ** 2) / 2 + zt["LAI_mean"] ** 2
                                       + zt["ELEV"] ** 2) / 3))
    # knn with k=1 is the nearest training site, k=n is the mean
    d = het.site_distances(desc, train, "T4")
    assert het.comprehensive_distance(desc, train, "T4", "knn", k=1) == pytest.approx(d.min())
    assert het.comprehensive_distance(desc, train, "T4", "knn", k=99) == pytest.approx(d.mean())
    with pytest.raises(ConfigError):
        het.comprehensive_distance(desc, train, "T4", "median")
    with pytest.raises(ConfigError):
        het.pairwise_distances(desc, train, weights={"soil": 1})


def test_missing_descriptors_are_skipped():
    desc = _toy({"TA_mean": [0, 1, 2, 3, 5], "LAI_mean": [0, 1, 2, 3, np.nan]})
    train = ["T0", "T1", "T2", "T3"]
    only_meteo = het.pairwise_distances(desc, train, ["T4"], ["T0"], weights={"rs": 0}).iloc[0, 0]
    assert het.pairwise_distances(desc, train, ["T4"], ["T0"]).iloc[0, 0] == pytest.approx(only_meteo)
    assert np.isfinite(only_meteo)


# ------------------------------------------------------------------ DI / AOA
def test_dissimilarity_index_toy_known_answer():
    desc = _toy({"TA_mean": [0, 1, 2, 3, 4, 10, 2.5]}, sites=["A", "B", "C", "D", "E", "far", "near"])
    train = ["A", "B", "C", "D", "E"]
    res = het.dissimilarity_index(desc, train, ["far", "near"])
    # mean pairwise training distance (raw units) = 20 / 10 = 2; nearest: 6 and 0.5
    assert res.loc["far", "DI"] == pytest.approx(3.0)
    assert res.loc["near", "DI"] == pytest.approx(0.25)
    # every training site's nearest other site is 1 away -> training DI 0.5 -> threshold 0.5
    assert res["threshold"].iloc[0] == pytest.approx(0.5)
    assert not res.loc["far", "AOA"] and res.loc["near", "AOA"]
    # importance weights scale variables (a zero weight removes one)
    desc2 = desc.assign(P_mean=[0, 0, 0, 0, 1, 0, 50])
    res2 = het.dissimilarity_index(desc2, train, ["near"], importance={"P": 0.0})
    assert res2.loc["near", "DI"] == pytest.approx(0.25)


def test_aoa_threshold_rules():
    x = [1, 2, 3, 4, 100]
    assert het.aoa_threshold(x) == 4  # fence 4 + 1.5 * 2 = 7 -> largest value <= 7
    assert het.aoa_threshold(x, "fence") == pytest.approx(4 + 1.5 * 2)
    assert np.isnan(het.aoa_threshold([np.nan]))
    with pytest.raises(ConfigError):
        het.aoa_threshold(x, "max")


# ------------------------------------------------------------------ runs and skill
def _fake_run(tmp_path, world, pool="all", learners=("mlr", "rf"), seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in world.site_ids:
        for ln in learners:
            for t in ("GPP", "ER"):
                rows.append({"SITE_ID": s, "learner": ln, "target": t, "zone": world.zone_of(s),
                             "R2": rng.uniform(-0.5, 0.9), "r2": rng.uniform(0, 1),
                             "RMSE": rng.uniform(0.3, 2), "MAE": 0.5, "bias": 0.0, "n": 700})
    run = tmp_path / f"run_{pool}"
    run.mkdir()
    pd.DataFrame(rows).to_parquet(run / "metrics.parquet")
    (run / "config.json").write_text(json.dumps({"data": "synthetic", "pool": pool,
                                                  "learners": list(learners), "targets": ["GPP", "ER"]}))
    return run


def test_run_distances_uses_fold_training_sets(tmp_path, world, desc):
    run = _fake_run(tmp_path, world, pool="zone")
    dist = het.run_distances(run, world, descriptors=desc)
    assert list(dist.columns[:6]) == ["SITE_ID", "D_mean", "D_centroid", "D_knn", "DI", "AOA"]
    assert dist["AOA"].dtype == bool
    for _, r in dist.iterrows():
        zone_sites = [s for s in world.site_ids if world.zone_of(s) == r["zone"] and s != r["SITE_ID"]]
        assert r["n_train"] == len(zone_sites)
        if len(zone_sites) >= 2:
            assert r["D_mean"] == pytest.approx(het.comprehensive_distance(desc, zone_sites, r["SITE_ID"]))
    run_all = _fake_run(tmp_path, world, pool="all")
    dall = het.run_distances(run_all, world, descriptors=desc)
    assert (dall["n_train"] == world.n_sites - 1).all()
    assert dall[["D_mean", "D_centroid", "D_knn", "DI"]].notna().all().all()


def test_distance_skill_matches_scipy():
    rng = np.random.default_rng(1)
    sites = [f"X{i:02d}" for i in range(30)]
    d = rng.uniform(0.5, 2.5, 30)
    zones = np.array(["arid", "humid"] * 15)
    dist = pd.DataFrame({"SITE_ID": sites, "D_mean": d})
    met = pd.DataFrame({"SITE_ID": sites, "learner": "rf", "target": "GPP", "zone": zones,
                        "R2": 1.0 - 0.3 * d + rng.normal(0, 0.05, 30)})
    out = het.distance_skill(met, dist)
    allrow = out[out["zone"] == "all"].iloc[0]
    assert allrow["n"] == 30
    pr = stats.pearsonr(d, met["R2"])
    assert allrow["pearson_r"] == pytest.approx(pr.statistic)
    assert allrow["pearson_p"] == pytest.approx(pr.pvalue)
    assert allrow["spearman_rho"] == pytest.approx(stats.spearmanr(d, met["R2"]).statistic)
    assert allrow["slope"] == pytest.approx(-0.3, abs=0.05)
    assert allrow["pearson_r"] < -0.9
    assert set(out["zone"]) == {"all", "arid", "humid"}
    assert out.loc[out["zone"] == "arid", "n"].iloc[0] == 15
    with pytest.raises(ConfigError):
        het.distance_skill(met, dist, distance="DI")


def _brute_p(x, y):
    import itertools

    xc, yc = x - x.mean(), y - y.mean()
    obs = abs(xc @ yc)
    sums = [abs(xc @ yc[list(p)]) for p in itertools.permutations(range(len(x)))]
    return float(np.mean(np.array(sums) >= obs - 1e-9))


def test_exact_p_values_for_small_samples():
    # n = 3 and a perfect rank correlation: 2 of the 6 pairings are as extreme
    rho, p, how = het.correlation_test([1.0, 2.0, 3.0], [0.9, 0.5, 0.1], "spearman")
    assert rho == pytest.approx(-1.0) and p == pytest.approx(1 / 3) and how == "exact"
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=6), rng.normal(size=6)
    r, p, _ = het.correlation_test(x, y, "pearson")
    assert r == pytest.approx(stats.pearsonr(x, y).statistic)
    assert p == pytest.approx(_brute_p(x, y))
    rho, p, _ = het.correlation_test(x, y, "spearman")
    assert p == pytest.approx(_brute_p(stats.rankdata(x), stats.rankdata(y)))
    # the permutation p differs from the asymptotic one at small n
    assert p != pytest.approx(stats.spearmanr(x, y).pvalue)
    # above the exact limit: scipy's asymptotic p
    x, y = rng.normal(size=11), rng.normal(size=11)
    r, p, how = het.correlation_test(x, y, "pearson")
    assert how == "asymptotic" and p == pytest.approx(stats.pearsonr(x, y).pvalue)
    assert het.correlation_test([1, 2], [2, 1])[2] == "n/a"
    assert len(het._permutations(5)) == 120 and len({tuple(r) for r in het._permutations(5)}) == 120


def test_distance_skill_small_samples_and_words():
    dist = pd.DataFrame({"SITE_ID": list("abcd"), "D_mean": [1.0, 2.0, 3.0, 4.0]})
    met = pd.DataFrame({"SITE_ID": list("abcd"), "learner": "rf", "target": "GPP",
                        "zone": ["arid", "arid", "arid", "humid"], "R2": [0.9, 0.5, 0.1, 0.3]})
    t = het.distance_skill(met, dist).set_index("zone")
    assert t.loc["arid", "spearman_p"] == pytest.approx(1 / 3) and t.loc["arid", "p_method"] == "exact"
    assert bool(t.loc["arid", "small_sample"]) and t.loc["humid", "n"] == 1
    assert t.loc["all", "x_min"] == 1.0 and t.loc["all", "x_max"] == 4.0
    assert het.format_correlation(t.loc["humid"].to_dict() | {"zone": "humid"}) == "n/a (1 site)"
    txt = het.format_correlation(t.loc["arid"].to_dict())
    assert txt.startswith("ρ = -1.00") and "exact p = 0.33" in txt and "small sample" in txt
    assert het.fit_formula(36.032, -27.469, "D_mean") == "R² ≈ 36 − 27 × D_mean (per unit of distance)"
    assert het.fit_formula(0.712, -0.268, "D") == "R² ≈ 0.71 − 0.27 × D (per unit of distance)"
    assert het.fit_formula(-0.05, 0.0031, "D").startswith("R² ≈ −0.050 + 0.0031 × D")
    assert het.fit_formula(np.nan, 1.0).startswith("no line")
    s = het.relation_sentences(het.distance_skill(met, dist), "rf", "GPP")
    assert len(s) == 3
    assert s[1].startswith("In the arid zone, skill falls with distance") and "same sign" in s[1]
    assert "small sample" in s[1] and "not significant" in s[1]
    assert "too few" in s[2]
    rt = het.readable_table(het.distance_skill(met, dist))
    assert list(rt.columns) == ["learner", "target", "zone", "n", "Spearman", "Pearson", "fit",
                                "compared with the paper"]
    assert rt.loc[rt.zone == "humid", "Spearman"].item() == "n/a (1 site)"
    assert rt.loc[rt.zone == "humid", "fit"].item() == "n/a"
    assert not rt.isna().any().any() and "None" not in rt.to_string()
    assert rt.loc[rt.zone == "all", "fit"].item().startswith("R² ≈ ")
    pos = het.paper_comparison_sentence({"zone": "arid", "n": 12, "spearman_rho": 0.47, "spearman_p": 0.12})
    assert "rises" in pos and "opposite sign" in pos and "moderate" in pos
    flat = het.paper_comparison_sentence({"zone": "all", "n": 40, "spearman_rho": 0.02, "spearman_p": 0.9})
    assert "no relation" in flat


# ------------------------------------------------------------------ real data
@pytest.mark.realdata
@pytest.mark.slow
def test_real_fluxnet_descriptors_and_distances(real_data):
    from fluxcore.sources import load_dataset

    ds = load_dataset(real_data)
    desc = het.site_descriptors(ds)
    assert len(desc) == ds.sites.index.nunique() or set(ds.site_ids) <= set(desc.index)
    assert desc["TA_mean"].notna().mean() > 0.9
    zone = pd.Series({s: ds.zone_of(s) for s in desc.index})
    vpd = desc["VPD_mean"].groupby(zone).mean()
    assert vpd["arid"] > vpd["humid"]  # drier climates have a larger mean VPD
    train = [s for s in ds.site_ids if s != "US-Ha1"]
    d = het.site_distances(desc, train, "US-Ha1")
    assert d.notna().all() and (d > 0).all()
    di = het.dissimilarity_index(desc, train, "US-Ha1")
    assert np.isfinite(di["DI"].iloc[0]) and np.isfinite(di["threshold"].iloc[0])
