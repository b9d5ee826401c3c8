"""Tests of the public process model (fluxcore.processmodel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxcore.errors import DataError
from fluxcore.processmodel import (
    ProcessModelParams,
    default_params,
    fapar_from_lai,
    growing_season_index,
    lloyd_taylor,
    lue_gpp,
    par_from_sw,
    run_process_model,
    temperature_scalar,
    trailing_mean,
    vpd_scalar,
    water_balance,
    water_stress_scalar,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/fluxnet2015"


def _drivers(n_days: int = 400, sites=("A", "B"), seed: int = 0) -> pd.DataFrame:
    """A small seeded multi-site driver table with seasonal cycles."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2014-01-01", periods=n_days, freq="D")
    doy = dates.day_of_year.to_numpy()
    frames = []
    for k, s in enumerate(sites):
        season = np.cos(2 * np.pi * (doy - 200) / 365.25)
        ta = 10 + 3 * k + 10 * season + rng.normal(0, 2, n_days)
        frames.append(pd.DataFrame({
            "SITE_ID": s, "DATE": dates, "TA": ta, "TMIN": ta - 5, "TMAX": ta + 5,
            "P": np.where(rng.random(n_days) < 0.3, rng.gamma(1.0, 6.0, n_days), 0.0),
            "VPD": np.clip(5 + 6 * season + rng.normal(0, 2, n_days), 0, None),
            "SW_IN": 180 + 100 * season + rng.normal(0, 20, n_days),
            "LAI": 0.5 + 3 * np.clip(season, 0, None),
        }))
    return pd.concat(frames, ignore_index=True)


SITES = pd.DataFrame({"LAT": [45.0, 40.0], "IGBP": ["DBF", "GRA"], "WHC_MM": [150.0, 100.0]},
                     index=pd.Index(["A", "B"], name="SITE_ID"))


# ------------------------------------------------------------------ small functions
def test_par_conversion():
    # 100 W m-2 for a day = 8.64 MJ m-2 d-1, of which 45 % is PAR
    assert par_from_sw(100.0) == pytest.approx(0.45 * 8.64)


def test_lue_monotone_in_par_and_zero_at_zero_lai():
    par = np.linspace(0, 15, 50)
    g = lue_gpp(par, fapar_from_lai(3.0), 0.8, 0.9, 1.0, eps_max=1.5)
    assert np.all(np.diff(g) > 0)
    assert g[0] == 0.0
    assert fapar_from_lai(0.0) == 0.0
    assert lue_gpp(10.0, fapar_from_lai(0.0), eps_max=2.0) == 0.0
    # fAPAR saturates below 1 and grows with LAI
    f = fapar_from_lai(np.array([0.5, 1, 2, 4, 8]))
    assert np.all(np.diff(f) > 0) and f[-1] < 1


def test_temperature_scalar_shape():
    assert temperature_scalar(20.0, -2, 20, 40) == pytest.approx(1.0)
    assert temperature_scalar(-2.0, -2, 20, 40) == 0.0
    assert temperature_scalar(40.0, -2, 20, 40) == 0.0
    assert temperature_scalar(-10.0, -2, 20, 40) == 0.0
    t = np.linspace(-1, 19.9, 30)
    assert np.all(np.diff(temperature_scalar(t, -2, 20, 40)) > 0)
    assert np.isnan(temperature_scalar(np.nan))


def test_vpd_and_water_scalars():
    assert vpd_scalar(3.0, 6.5, 40.0) == 1.0
    assert vpd_scalar(50.0, 6.5, 40.0) == 0.0
    assert vpd_scalar(23.25, 6.5, 40.0) == pytest.approx(0.5)
    assert water_stress_scalar(0.6, 0.5, 0.05) == 1.0
    assert water_stress_scalar(0.05, 0.5, 0.05) == 0.0
    assert water_stress_scalar(0.275, 0.5, 0.05) == pytest.approx(0.5)


def test_lloyd_taylor_reference_and_monotone():
    p = ProcessModelParams()
    assert lloyd_taylor(p.t_ref - 273.15, r_ref=2.3) == pytest.approx(2.3)
    assert lloyd_taylor(10.0, r_ref=1.0, t_ref=283.15) == pytest.approx(1.0)
    t = np.linspace(-30, 40, 50)
    assert np.all(np.diff(lloyd_taylor(t, 1.0)) > 0)
    assert lloyd_taylor(-50.0, 1.0) == 0.0  # below T0


def test_water_balance_dry_down_and_refill():
    n = 100
    p = np.zeros(n)
    pet = np.full(n, 4.0)
    rel, aet = water_balance(p, pet, whc=100.0, spinup_days=0)
    assert rel[0] == pytest.approx(1.0)
    assert np.all(np.diff(rel) <= 0) and rel[-1] < 0.2
    assert np.all(aet <= pet + 1e-12) and np.all(aet >= 0)
    p2 = p.copy()
    p2[50] = 500.0  # a flood refills the bucket (excess runs off)
    rel2, _ = water_balance(p2, pet, whc=100.0, spinup_days=0)
    assert rel2[50] == pytest.approx(1.0)
    # vectorised over sites equals the per-site runs
    rel_2d, _ = water_balance(np.vstack([p, p2]), np.vstack([pet, pet]), [100.0, 100.0], spinup_days=0)
    np.testing.assert_allclose(rel_2d[1], rel2)


def test_trailing_mean_is_causal():
    x = np.random.default_rng(0).normal(size=200)
    m = trailing_mean(x, 7.0)
    y = x.copy()
    y[150:] += 100.0
    np.testing.assert_allclose(trailing_mean(y, 7.0)[:150], m[:150])
    np.testing.assert_allclose(trailing_mean(np.full(20, 3.0), 5.0), 3.0)
    assert growing_season_index(20.0, 5.0) == 1.0 and growing_season_index(-5.0, 5.0) == 0.0


def test_default_params_per_igbp():
    assert default_params("EBF").eps_max != default_params("OSH").eps_max
    assert default_params("nonsense") == ProcessModelParams()
    p = default_params("GRA")
    assert ProcessModelParams.from_dict(p.to_dict()) == p


# ------------------------------------------------------------------------- the model
def test_run_process_model_identity_and_ranges():
    d = _drivers()
    out = run_process_model(d, SITES)
    assert list(out.columns) == ["GPP", "ER", "NEE"]
    assert out.index.equals(d.index)
    assert out.notna().all().all()
    assert (out["GPP"] >= 0).all() and (out["ER"] > 0).all()
    np.testing.assert_array_equal(out["NEE"].to_numpy(), (out["ER"] - out["GPP"]).to_numpy())
    # summer GPP exceeds winter GPP at the temperate site
    a = out[d["SITE_ID"] == "A"]["GPP"].to_numpy()
    doy = d.loc[d["SITE_ID"] == "A", "DATE"].dt.day_of_year.to_numpy()
    assert a[(doy > 160) & (doy < 240)].mean() > 3 * a[(doy < 40) | (doy > 340)].mean()
    assert out.attrs["fallbacks"] == {}


def test_zero_lai_gives_zero_gpp():
    d = _drivers().assign(LAI=0.0)
    out = run_process_model(d, SITES)
    assert (out["GPP"] == 0).all()
    assert (out["ER"] > 0).all()


def test_more_light_more_gpp():
    d = _drivers()
    lo = run_process_model(d, SITES)["GPP"]
    hi = run_process_model(d.assign(SW_IN=d["SW_IN"] * 1.2), SITES)["GPP"]
    assert (hi >= lo - 1e-12).all() and hi.sum() > lo.sum() * 1.1


def test_fallbacks_without_p_and_lai():
    d = _drivers()
    full = run_process_model(d, SITES)
    no_p = run_process_model(d.drop(columns="P"), SITES)
    assert no_p.notna().all().all()
    assert all("VPD-only" in " ".join(v) for v in no_p.attrs["fallbacks"].values())
    assert len(no_p.attrs["fallbacks"]) == 2
    # without water stress GPP can only be higher
    assert (no_p["GPP"] >= full["GPP"] - 1e-9).all()
    no_lai = run_process_model(d.drop(columns=["LAI", "P", "VPD", "TMIN", "TMAX"]), None)
    assert no_lai.notna().all().all() and (no_lai["GPP"] >= 0).all()
    fb = " ".join(no_lai.attrs["fallbacks"]["A"])
    assert "no LAI" in fb and "no VPD" in fb and "VPD-only" in fb
    # no latitude -> no PET -> VPD-only as well
    assert "VPD-only" in " ".join(run_process_model(d, None).attrs["fallbacks"]["A"])


def test_ta_from_tmin_tmax():
    d = _drivers()
    a = run_process_model(d.drop(columns="TA"), SITES)
    b = run_process_model(d.assign(TA=(d["TMIN"] + d["TMAX"]) / 2), SITES)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())


def test_bad_input_raises_data_error():
    d = _drivers()
    with pytest.raises(DataError, match="SW_IN"):
        run_process_model(d.drop(columns="SW_IN"), SITES)
    with pytest.raises(DataError, match="TA"):
        run_process_model(d.drop(columns=["TA", "TMIN"]), SITES)
    with pytest.raises(DataError, match="twice"):
        run_process_model(pd.concat([d, d.iloc[:1]]), SITES)


def test_gaps_row_order_and_per_site_params():
    d = _drivers()
    full = run_process_model(d, SITES)
    # shuffled rows give the same value per row
    shuf = d.sample(frac=1.0, random_state=1)
    np.testing.assert_allclose(run_process_model(shuf, SITES).loc[d.index].to_numpy(), full.to_numpy())
    # a NaN SW_IN day gives NaN that day only; a missing row does not break the others
    g = d.copy()
    g.loc[10, "SW_IN"] = np.nan
    out = run_process_model(g.drop(index=20), SITES)
    assert out.loc[10].isna().all() and out.drop(index=10).notna().all().all()
    assert 20 not in out.index
    # one parameter set per site
    pa = {"A": ProcessModelParams(eps_max=2.0), "B": ProcessModelParams(eps_max=1.0)}
    o2 = run_process_model(d, SITES, pa)
    o1 = run_process_model(d, SITES, ProcessModelParams(eps_max=1.0))
    isb = (d["SITE_ID"] == "B").to_numpy()
    np.testing.assert_allclose(o2["GPP"][isb], o1["GPP"][isb])
    assert o2["GPP"][~isb].sum() > 1.5 * o1["GPP"][~isb].sum()


def test_diagnostics_reassemble_gpp_and_er():
    d = _drivers()
    out = run_process_model(d, SITES, diagnostics=True)
    p = default_params("DBF")
    a = out[d["SITE_ID"] == "A"]
    gpp = p.eps_max * a["FAPAR"] * a["PAR"] * a["F_T"] * a["F_VPD"] * a["F_W"]
    np.testing.assert_allclose(gpp, a["GPP"], rtol=1e-10)
    np.testing.assert_allclose(a["ER_T"] + a["ER_GPP"], a["ER"], rtol=1e-10)
    assert (out["REL_W"].between(0, 1)).all()


@pytest.mark.realdata
def test_runs_on_real_tower_drivers():
    """The model runs on real drivers lacking P and LAI and follows the observed GPP."""
    path = REAL / "daily.parquet"
    if not path.exists():
        pytest.skip("real FLUXNET2015 data not available")
    sites = ["DE-Hai", "US-Ha1"]
    raw = pd.read_parquet(path, filters=[("SITE_ID", "in", sites)])
    if raw.empty:
        pytest.skip("sites not in the real data")
    d = pd.DataFrame({
        "SITE_ID": raw["SITE_ID"].astype(str), "DATE": pd.to_datetime(raw["TIMESTAMP"]),
        "TA": raw["TA_F"], "TMIN": raw["TMIN_F"], "TMAX": raw["TMAX_F"], "VPD": raw["VPD_F"],
        "SW_IN": raw["SW_IN_F"],
    })
    cat = pd.read_csv(REAL / "sites.csv").set_index("SITE_ID")
    out = run_process_model(d, cat)
    ok = out["GPP"].notna() & raw["GPP_NT_VUT_REF"].notna().to_numpy()
    assert ok.mean() > 0.9
    r = np.corrcoef(out["GPP"][ok], raw["GPP_NT_VUT_REF"][ok.to_numpy()])[0, 1]
    assert r > 0.6
    assert "no LAI" in " ".join(out.attrs["fallbacks"][sites[0]])
