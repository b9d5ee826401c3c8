"""Feature building: alignment, no targets in X, no cross-site leakage, derived values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluxcore.aridity import extraterrestrial_radiation
from fluxcore.dataset import FluxDataset, make_sites_frame
from fluxcore.errors import ConfigError
from fluxcore.features import FeatureConfig, FeatureTable, build_features, trailing_mean
from fluxcore.variables import TARGETS


def make_dataset(seed: int = 0, n_days: int = 90, drop_p: bool = False) -> FluxDataset:
    rng = np.random.default_rng(seed)
    sites = pd.DataFrame({
        "SITE_ID": ["AA-One", "BB-Two", "CC-Thr"],
        "LAT": [45.0, -10.0, np.nan],
        "LON": [5.0, 20.0, 0.0],
        "IGBP": ["ENF", "GRA", "CRO"],
        "ARIDITY_INDEX": [1.2, 0.3, 0.55],
        "ARIDITY_ZONE": ["humid", "semi-arid", "semi-humid"],
        "ELEV": [100.0, 900.0, 50.0],
        "CLAY": [20.0, 35.0, np.nan],
    })
    rows = []
    for i, sid in enumerate(sites["SITE_ID"]):
        n = n_days - 10 * i  # different lengths
        dates = pd.date_range("2012-03-01", periods=n, freq="D")
        ta = 10 + 5 * np.sin(np.arange(n) / 9) + rng.normal(0, 1, n)
        rows.append(pd.DataFrame({
            "SITE_ID": sid, "DATE": dates, "TA": ta, "TMIN": ta - 4, "TMAX": ta + 5,
            "P": rng.gamma(0.5, 4, n), "VPD": rng.uniform(0, 15, n), "SW_IN": rng.uniform(50, 300, n),
            "GPP": rng.uniform(0, 10, n), "ER": rng.uniform(0, 8, n),
        }))
    daily = pd.concat(rows, ignore_index=True)
    daily["NEE"] = daily["ER"] - daily["GPP"]
    daily.loc[5, "TA"] = np.nan
    if drop_p:
        daily = daily.drop(columns="P")
    return FluxDataset(sites=make_sites_frame(sites), daily=daily, name="tiny", synthetic=True)


def test_alignment_and_no_targets_in_X():
    ds = make_dataset()
    ft = build_features(ds)
    assert isinstance(ft, FeatureTable)
    n = len(ds.daily)
    assert len(ft.X) == len(ft.y) == len(ft.sites) == len(ft.dates) == len(ft.zones) == n
    assert ft.X.index.equals(ds.daily.index) and ft.y.index.equals(ds.daily.index)
    assert np.array_equal(ft.sites, ds.daily["SITE_ID"].to_numpy())
    assert np.array_equal(ft.dates, ds.daily["DATE"].to_numpy())
    assert not set(TARGETS) & set(ft.X.columns)
    assert list(ft.y.columns) == ["GPP", "ER"]
    np.testing.assert_array_equal(ft.y["GPP"].to_numpy(), ds.daily["GPP"].to_numpy())
    assert ft.feature_names == list(ft.X.columns)
    assert all(np.issubdtype(t, np.floating) for t in ft.X.dtypes)
    # zones per row from the catalogue
    assert set(ft.zones[ft.sites == "BB-Two"]) == {"semi-arid"}
    # paper variables present (statics broadcast), then derived ones
    for v in ["TA", "TMIN", "TMAX", "P", "VPD", "SW_IN", "ELEV", "CLAY", "DOY_SIN", "DOY_COS",
              "SW_IN_POT", "DTR", "TA_MEAN7D", "TA_MEAN30D", "P_MEAN30D", "SW_IN_MEAN7D"]:
        assert v in ft.X.columns, v
    assert "LAT" not in ft.X  # optional
    # site-level features: constant within a site, site means of the drivers
    for c in ("SITE_MEAN_TA", "ARIDITY_INDEX", "IGBP_CRO"):
        assert ft.X[c].groupby(ft.sites).nunique().max() == 1, c
    b = ft.sites == "BB-Two"
    assert ft.X.loc[b, "SITE_MEAN_TA"].iloc[0] == pytest.approx(ds.daily.loc[b, "TA"].mean())
    igbp = ft.X[[c for c in ft.X if c.startswith("IGBP_")]]
    assert (igbp.sum(axis=1) == 1).all()
    assert (ft.X.loc[ft.sites == "BB-Two", "ELEV"] == 900.0).all()
    # the dataset is not modified
    assert "DOY_SIN" not in ds.daily


def test_rolling_features_do_not_leak_across_sites():
    ds = make_dataset()
    base = build_features(ds)
    daily = ds.daily.copy()
    b = daily["SITE_ID"] == "BB-Two"
    for c in ["TA", "TMIN", "TMAX", "P", "VPD", "SW_IN"]:
        daily.loc[b, c] = daily.loc[b, c] * 3 + 100
    changed = build_features(FluxDataset(sites=ds.sites, daily=daily, name="tiny"))
    a = base.sites == "AA-One"
    pd.testing.assert_frame_equal(base.X[a], changed.X[a])
    assert not base.X[~a & (base.sites == "BB-Two")].equals(changed.X[~a & (base.sites == "BB-Two")])


def test_rolling_features_use_past_only():
    ds = make_dataset()
    no_site_means = FeatureConfig(site_means=())  # site means use every day of the site
    base = build_features(ds, no_site_means)
    daily = ds.daily.copy()
    a = np.flatnonzero(daily["SITE_ID"].to_numpy() == "AA-One")
    t = a[40]
    daily.loc[a[41]:a[-1], "TA"] = daily.loc[a[41]:a[-1], "TA"] + 50
    fut = build_features(FluxDataset(sites=ds.sites, daily=daily, name="tiny"), no_site_means)
    pd.testing.assert_frame_equal(base.X.loc[: t], fut.X.loc[: t])
    assert fut.X.loc[a[41], "TA_MEAN7D"] > base.X.loc[a[41], "TA_MEAN7D"]


def test_targets_do_not_change_features():
    ds = make_dataset()
    daily = ds.daily.copy()
    daily["GPP"] = daily["GPP"] * -5
    daily["ER"] = 0.0
    pd.testing.assert_frame_equal(build_features(ds).X,
                                  build_features(FluxDataset(sites=ds.sites, daily=daily)).X)


def test_trailing_mean_values_and_gaps():
    sites = np.array(["A"] * 5 + ["B"] * 3)
    dates = np.array(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07",
                      "2020-01-01", "2020-01-02", "2020-01-03"], dtype="datetime64[ns]")
    v = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 10.0, 20.0, 30.0])
    out = trailing_mean(v, sites, dates, 3)
    # A: day1 1; day2 (1+2)/2; day3 (1+2)/2 (NaN skipped); day6 window 4..6 -> 4; day7 5..7 -> 4.5
    np.testing.assert_allclose(out, [1.0, 1.5, 1.5, 4.0, 4.5, 10.0, 15.0, 20.0])
    out2 = trailing_mean(v, sites, dates, 3, min_periods=2)
    assert np.isnan(out2[0]) and np.isnan(out2[3]) and out2[4] == 4.5
    # row order does not matter
    perm = np.array([7, 0, 3, 5, 1, 6, 2, 4])
    np.testing.assert_allclose(trailing_mean(v[perm], sites[perm], dates[perm], 3), out[perm])
    # against pandas' time-based rolling within each site
    df = pd.DataFrame({"s": sites, "d": dates, "v": v})
    ref = df.groupby("s").rolling("3D", on="d", min_periods=1)["v"].mean().to_numpy()
    np.testing.assert_allclose(out, ref)


def test_derived_values():
    ds = make_dataset()
    ft = build_features(ds, FeatureConfig(aridity_index=True, latitude=True))
    d = ds.daily
    doy = d["DATE"].dt.day_of_year.to_numpy()
    np.testing.assert_allclose(ft.X["DOY_SIN"], np.sin(2 * np.pi * doy / 365.25))
    a = (ft.sites == "AA-One")
    ra = extraterrestrial_radiation(45.0, doy[a]) * 1e6 / 86400
    np.testing.assert_allclose(ft.X.loc[a, "SW_IN_POT"], ra)
    assert 100 < ft.X.loc[a, "SW_IN_POT"].mean() < 500  # W m-2, mid latitudes in spring
    assert ft.X.loc[ft.sites == "CC-Thr", "SW_IN_POT"].isna().all()  # unknown latitude
    np.testing.assert_allclose(ft.X["DTR"], d["TMAX"] - d["TMIN"])
    assert (ft.X.loc[ft.sites == "BB-Two", "ARIDITY_INDEX"] == 0.3).all()
    assert (ft.X.loc[a, "LAT"] == 45.0).all()


def test_config_selection_and_errors():
    ds = make_dataset(drop_p=True)
    ft = build_features(ds, FeatureConfig(variables=("TA", "SW_IN"), doy=False,
                                          potential_radiation=False, temperature_range=False,
                                          rolling_windows=(7,), absorbed_radiation=False,
                                          site_means=(), site_attributes=(), igbp=False),
                        targets=("GPP", "ER", "NEE"))
    assert ft.feature_names == ["TA", "SW_IN", "TA_MEAN7D", "VPD_MEAN7D", "SW_IN_MEAN7D"]
    assert list(ft.y.columns) == ["GPP", "ER", "NEE"]
    with pytest.raises(ConfigError, match="lacks"):
        build_features(ds, FeatureConfig(variables=("P",)))
    with pytest.raises(ConfigError, match="unknown feature variable"):
        build_features(ds, FeatureConfig(variables=("FOO",)))
    with pytest.raises(ConfigError, match="unknown target"):
        build_features(ds, targets=("LE",))
    with pytest.raises(ConfigError, match="unknown feature option"):
        FeatureConfig.from_dict({"bogus": 1})
    cfg = FeatureConfig(rolling_windows=(3, 14), latitude=True)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    # dict config accepted
    assert build_features(ds, {"doy": False}).feature_names[0] == "TA"


def test_rows_subset():
    ft = build_features(make_dataset())
    sub = ft.rows(ft.sites == "AA-One")
    assert len(sub) == (ft.sites == "AA-One").sum() and set(sub.sites) == {"AA-One"}
    assert ft.time_step == "daily" and sub.time_step == "daily"


def test_daily_time_step_keeps_day_features():
    """Daily data keep day-of-year features and windows in days (names ending in D)."""
    ds = make_dataset()
    assert ds.time_step == "daily"
    ft = build_features(ds, targets=[])
    assert ft.y.shape == (len(ds.daily), 0)
    assert {"DOY_SIN", "DOY_COS", "TA_MEAN7D", "TA_MEAN30D"} <= set(ft.feature_names)
    assert not any(c.startswith("MONTH_") or c.endswith("M") and "_MEAN" in c for c in ft.feature_names)
    d = ds.daily
    ref = trailing_mean(d["TA"].to_numpy(), d["SITE_ID"].to_numpy(), d["DATE"].to_numpy(), 7, step="daily")
    np.testing.assert_array_equal(ft.X["TA_MEAN7D"].to_numpy(), ref)


REAL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared/data/fluxnet2015"


@pytest.mark.realdata
def test_real_data_features_few_sites():
    from fluxcore.sources import load_dataset

    ds = load_dataset(REAL)
    sub = ds.subset(sites=ds.site_ids[:4])
    ft = build_features(sub)
    assert ft.X.index.equals(sub.daily.index)
    assert not set(TARGETS) & set(ft.X.columns)
    assert {"TA", "SW_IN", "DOY_SIN", "SW_IN_POT", "TA_MEAN30D"} <= set(ft.feature_names)
    # potential radiation bounds the observed mean shortwave radiation (a few % noise allowed)
    ok = ft.X["SW_IN"].notna()
    assert (ft.X.loc[ok, "SW_IN"] <= 1.1 * ft.X.loc[ok, "SW_IN_POT"] + 20).mean() > 0.99
    # each site's features depend on that site only
    # (IGBP one-hot columns are made for the classes present in the dataset)
    one = build_features(ds.subset(sites=[ds.site_ids[0]]))
    pd.testing.assert_frame_equal(ft.X[ft.sites == ds.site_ids[0]].reset_index(drop=True)[one.X.columns],
                                  one.X.reset_index(drop=True))
    # the extra drivers of real data: EVI, monthly precipitation and wind, site-level features
    assert {"EVI", "P_MONTHLY", "WS_MONTHLY", "APAR_LAI", "SW_IN_EVI", "SITE_MEAN_EVI",
            "ARIDITY_INDEX", "MAP_MM"} <= set(ft.feature_names)


def test_bucket_water_bounds_and_dynamics():
    from fluxcore.features import bucket_water
    n = 60
    sites = np.array(["A"] * n + ["B"] * n)
    dates = np.tile(pd.date_range("2010-01-01", periods=n).to_numpy(), 2)
    cap = np.r_[np.full(n, 100.0), np.full(n, 50.0)]
    p = np.r_[np.zeros(n), np.full(n, 40.0)]  # A: drought, B: heavy rain
    pet = np.full(2 * n, 5.0)
    w = bucket_water(p, pet, sites, dates, cap)
    a, b = w[:n], w[n:]
    # A starts full and dries out: W_t = 100 (1 - 5/100)^t, strictly decreasing, never < 0
    np.testing.assert_allclose(a, 100.0 * 0.95 ** np.arange(1, n + 1))
    # B saturates at its own capacity (runoff beyond)
    assert np.all(b == 50.0)
    # row order does not matter; a missing P counts as no rain
    perm = np.random.default_rng(0).permutation(2 * n)
    np.testing.assert_allclose(bucket_water(p[perm], pet[perm], sites[perm], dates[perm], cap[perm]), w[perm])
    p2 = p.copy()
    p2[n + 5] = np.nan
    assert bucket_water(p2, pet, sites, dates, cap)[n + 5] < 50.0


def test_water_balance_features_past_only_and_per_site():
    ds = make_dataset()
    cfg = FeatureConfig(water_balance=True, site_means=())
    base = build_features(ds, cfg)
    for c in ("PET_HG", "SWC_REL", "WB_MEAN30D"):
        assert c in base.X, c
    assert "PET_HG" not in build_features(ds).X  # off by default
    a = base.sites == "AA-One"
    sw = base.X.loc[a, "SWC_REL"]
    assert sw.between(0, 1).all() and sw.iloc[0] <= 1.0
    # Hargreaves from the rows' own temperatures and the site latitude
    d = ds.daily[a]
    doy = pd.DatetimeIndex(d["DATE"]).day_of_year.to_numpy()
    from fluxcore.aridity import hargreaves_pet
    np.testing.assert_allclose(base.X.loc[a, "PET_HG"],
                               hargreaves_pet(d["TMIN"], d["TMAX"], 45.0, doy, tmean=d["TA"]))
    assert base.X.loc[base.sites == "CC-Thr", "PET_HG"].isna().all()  # no latitude: unknown
    # the future of a site and the other sites never change a day's value
    daily = ds.daily.copy()
    idx = np.flatnonzero(a)
    t = idx[40]
    daily.loc[idx[41]:idx[-1], "P"] = daily.loc[idx[41]:idx[-1], "P"] + 30
    b = daily["SITE_ID"] == "BB-Two"
    daily.loc[b, "P"] = 0.0
    fut = build_features(FluxDataset(sites=ds.sites, daily=daily, name="tiny"), cfg)
    pd.testing.assert_frame_equal(base.X.loc[:t], fut.X.loc[:t])
    assert (fut.X.loc[idx[45]:idx[-1], "SWC_REL"] >= base.X.loc[idx[45]:idx[-1], "SWC_REL"]).all()
    assert not np.allclose(fut.X.loc[b, "SWC_REL"], base.X.loc[b, "SWC_REL"])
    # capacity: catalogue WHC_MM else the configured default, which must be positive
    with pytest.raises(ConfigError, match="bucket_capacity_mm"):
        build_features(ds, FeatureConfig(water_balance=True, bucket_capacity_mm=0))
    rt = FeatureConfig.from_dict(cfg.to_dict())
    assert rt == cfg


def test_trailing_mean_of_one_site_is_bit_identical_whatever_other_sites_hold():
    """Cumulative sums restart per site: another site's values cannot even change the last
    bits (a sum over all sites did, and a network amplified it into a leak)."""
    import numpy as np

    from fluxcore.features import trailing_mean

    rng = np.random.default_rng(1)
    sites = np.repeat(["a", "b", "c"], 80)
    dates = np.tile(np.arange("2010-01-01", "2010-03-22", dtype="datetime64[D]"), 3)
    v = rng.normal(size=240) * 1e3
    v[[5, 100]] = np.nan
    base = trailing_mean(v, sites, dates, 30)
    poisoned = v.copy()
    poisoned[sites == "b"] = poisoned[sites == "b"] * 1e9 + 7e8
    after = trailing_mean(poisoned, sites, dates, 30)
    keep = sites != "b"
    assert np.array_equal(base[keep], after[keep], equal_nan=True)
