"""Shared test configuration: real-data location, auto-skip, small seeded data factories.

``REAL_DATA`` is ``../shared/data/fluxnet2015`` relative to the project root. Tests that need
it are marked ``@pytest.mark.realdata`` and are skipped automatically when it is absent.
The factories write *small synthetic* files (never copies of the real data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
HAVE_REAL_DATA = (REAL_DATA / "daily.parquet").is_file() and (REAL_DATA / "sites.csv").is_file()


def pytest_collection_modifyitems(config, items):
    if HAVE_REAL_DATA:
        return
    skip = pytest.mark.skip(reason=f"real FLUXNET2015 data not found at {REAL_DATA}")
    for item in items:
        if "realdata" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Path of the prepared FLUXNET2015 folder (skips the test when absent)."""
    if not HAVE_REAL_DATA:
        pytest.skip(f"real FLUXNET2015 data not found at {REAL_DATA}")
    return REAL_DATA


# ------------------------------------------------------------------ factories
def synthetic_daily(
    sites=("XX-Aaa", "XX-Bbb", "XX-Ccc"),
    n_days: int = 400,
    start: str = "2005-01-01",
    seed: int = 0,
    lat: float = 45.0,
) -> pd.DataFrame:
    """Plausible tidy daily table with canonical names [gC m-2 d-1, degC, ...].

    Seasonal temperature and radiation, GPP from a light-use-efficiency-like rule, ER from
    temperature, NEE = ER - GPP, a QC_NEE_FRAC fraction drawn uniformly in [0, 1].
    """
    rng = np.random.default_rng(seed)
    frames = []
    for k, sid in enumerate(sites):
        dates = pd.date_range(start, periods=n_days, freq="D")
        doy = dates.day_of_year.to_numpy()
        season = np.sin(2 * np.pi * (doy - 105) / 365.0)
        ta = 10 + 12 * season + rng.normal(0, 2, n_days) + k
        tmin, tmax = ta - 5 - rng.random(n_days), ta + 5 + rng.random(n_days)
        sw = np.clip(180 + 120 * season + rng.normal(0, 20, n_days), 5, None)
        vpd = np.clip(6 + 5 * season + rng.normal(0, 1, n_days), 0.1, None)
        p = rng.gamma(0.4, 5.0, n_days)
        gpp = np.clip(0.03 * sw * np.clip(ta, 0, None) / 15 + rng.normal(0, 0.5, n_days), 0, None)
        er = 1.0 + 0.15 * np.clip(ta, 0, None) + rng.normal(0, 0.3, n_days)
        frames.append(pd.DataFrame({
            "SITE_ID": sid, "DATE": dates, "TA": ta, "TMIN": tmin, "TMAX": tmax, "P": p,
            "WS": 2 + rng.random(n_days), "VPD": vpd, "SW_IN": sw, "GPP": gpp, "ER": er,
            "NEE": er - gpp, "QC_NEE_FRAC": rng.random(n_days),
            "LAT": lat + k, "LON": 10.0 + k, "IGBP": "GRA", "ELEV": 100.0 * (k + 1),
        }))
    return pd.concat(frames, ignore_index=True)


def write_official_dd(folder: Path, site: str, n_days: int = 200, seed: int = 0,
                      start: str = "2008-01-01", prefix: str = "FLX",
                      **overrides) -> Path:
    """Write a small file in the official FLUXNET2015 DD format (-9999 missing, YYYYMMDD)."""
    d = synthetic_daily(sites=(site,), n_days=n_days, start=start, seed=seed)
    out = pd.DataFrame({
        "TIMESTAMP": d["DATE"].dt.strftime("%Y%m%d").astype(int),
        "TA_F": d["TA"], "TA_F_QC": 1.0, "SW_IN_F": d["SW_IN"], "SW_IN_F_QC": 1.0,
        "VPD_F": d["VPD"], "VPD_F_QC": 1.0, "P_F": d["P"], "P_F_QC": 1.0, "WS_F": d["WS"],
        "NEE_VUT_REF": d["NEE"], "NEE_VUT_REF_QC": d["QC_NEE_FRAC"],
        "RECO_NT_VUT_REF": d["ER"], "GPP_NT_VUT_REF": d["GPP"], "GPP_DT_VUT_REF": d["GPP"],
    })
    for k, v in overrides.items():
        out[k] = v
    out.iloc[5, out.columns.get_loc("P_F")] = -9999  # one missing value, as in real files
    y1, y2 = d["DATE"].dt.year.min(), d["DATE"].dt.year.max()
    mid = "FLUXNET2015" if prefix == "FLX" else "FLUXNET"
    path = folder / f"{prefix}_{site}_{mid}_SUBSET_DD_{y1}-{y2}_1-4.csv"
    out.to_csv(path, index=False)
    return path


@pytest.fixture
def make_daily():
    """Factory fixture: ``make_daily(sites=..., n_days=..., seed=...)`` -> tidy DataFrame."""
    return synthetic_daily


@pytest.fixture
def make_dd():
    """Factory fixture: ``make_dd(folder, site, ...)`` writes an official DD file."""
    return write_official_dd


@pytest.fixture
def loso_test_learners():
    """Register the runner's test-only learners (spy, OLS, failing) for one test."""
    from factories_loso import SpyLearner, register_test_learners, unregister_test_learners

    register_test_learners()
    SpyLearner.FIT_LOG.clear()
    yield
    unregister_test_learners()
