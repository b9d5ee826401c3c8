"""Seeded synthetic datasets and test-only learners for the LOSO runner tests.

Importable by subprocesses and spawned workers (``tests`` is put on ``sys.path`` by the
callers), so learner classes here pickle by reference.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import pandas as pd

from fluxcore.dataset import FluxDataset, make_sites_frame
from fluxcore.learners.base import _REGISTRY, FluxLearner
from fluxcore.variables import ZONES

ZONE_AI = {"arid": 0.12, "semi-arid": 0.35, "semi-humid": 0.58, "humid": 1.2}


def make_flux_dataset(n_sites: int = 10, n_years: int = 1, seed: int = 0,
                      nan_frac: float = 0.02) -> FluxDataset:
    """Small FluxDataset: ``n_sites`` sites (zones cycled arid..humid) x ``n_years`` years.

    Targets depend on drivers, statics and a site offset, plus noise; a few NaN in drivers
    and targets.
    """
    rng = np.random.default_rng(seed)
    ids = [f"T{'ABCD'[i % 4]}-S{i:02d}" for i in range(n_sites)]
    zones = [ZONES[i % 4] for i in range(n_sites)]
    sites = pd.DataFrame({
        "SITE_ID": ids,
        "LAT": rng.uniform(20, 60, n_sites), "LON": rng.uniform(-120, 30, n_sites),
        "IGBP": rng.choice(["ENF", "GRA", "DBF"], n_sites),
        "ARIDITY_INDEX": [ZONE_AI[z] * rng.uniform(0.9, 1.1) for z in zones],
        "ARIDITY_ZONE": zones,
        "ELEV": rng.uniform(0, 2000, n_sites), "CLAY": rng.uniform(5, 40, n_sites),
        "SAND": rng.uniform(10, 60, n_sites),
    })
    # not exactly 100 - CLAY - SAND, so that linear designs stay full rank in the tests
    sites["SILT"] = 100 - sites["CLAY"] - sites["SAND"] + rng.normal(0, 2, n_sites)
    dates = pd.date_range("2010-01-01", periods=365 * n_years, freq="D")
    frames = []
    for i, sid in enumerate(ids):
        n = len(dates)
        doy = dates.day_of_year.to_numpy()
        season = np.sin(2 * np.pi * (doy - 100) / 365)
        ta = 10 + 12 * season + rng.normal(0, 2, n) + (i % 4) * 2
        sw = 180 + 100 * season + rng.normal(0, 20, n)
        lai = np.clip(2 + 1.5 * season + rng.normal(0, 0.2, n), 0, None)
        vpd = np.clip(5 + 0.4 * ta + rng.normal(0, 1, n), 0, None)
        p = rng.exponential(2, n)
        gpp = 0.02 * sw * lai / 3 + 0.1 * ta - 0.1 * vpd + 0.5 * (i % 3) + rng.normal(0, 0.5, n)
        er = 1 + 0.08 * ta + 0.3 * gpp + 0.001 * sites.loc[i, "ELEV"] + rng.normal(0, 0.3, n)
        df = pd.DataFrame({"SITE_ID": sid, "DATE": dates, "TA": ta,
                           "TMIN": ta - 4 - rng.gamma(2, 1, n), "TMAX": ta + 4 + rng.gamma(2, 1, n),
                           "P": p, "WS": rng.uniform(1, 5, n), "VPD": vpd, "SW_IN": sw, "LAI": lai,
                           "GPP": gpp, "ER": er, "NEE": er - gpp})
        for col in ("GPP", "ER", "TA", "LAI"):
            df.loc[rng.random(n) < nan_frac, col] = np.nan
        frames.append(df)
    daily = pd.concat(frames, ignore_index=True).sort_values(["SITE_ID", "DATE"]).reset_index(drop=True)
    return FluxDataset(sites=make_sites_frame(sites), daily=daily, name=f"loso-test-{seed}",
                       source="tests", synthetic=True, meta={"seed": seed})


def _xy(X, y=None):
    Xa = X.to_numpy(dtype=float, na_value=np.nan)
    return Xa, (None if y is None else y.to_numpy(dtype=float, na_value=np.nan))


class OLSLearner(FluxLearner):
    """Plain OLS with training-mean imputation, one model per target column (not multi-target)."""

    name = "test_ols"

    def __init__(self, random_state: int | None = 0):
        self.random_state = random_state

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        Xa, ya = _xy(X, y)
        self.means_ = np.nanmean(Xa, axis=0)
        Xi = np.where(np.isnan(Xa), self.means_, Xa)
        ok = np.isfinite(ya[:, 0])
        A = np.column_stack([np.ones(ok.sum()), Xi[ok]])
        w = np.ones(ok.sum()) if sample_weight is None else np.asarray(sample_weight)[ok]
        sw = np.sqrt(w)[:, None]
        self.coef_ = np.linalg.lstsq(A * sw, ya[ok, 0] * sw[:, 0], rcond=None)[0]
        return self

    def predict(self, X, *, sites, dates):
        Xa, _ = _xy(X)
        Xi = np.where(np.isnan(Xa), self.means_, Xa)
        return (np.column_stack([np.ones(len(Xi)), Xi]) @ self.coef_)[:, None]


class SpyLearner(FluxLearner):
    """Multi-target mean predictor that records every site and the weights given to fit.

    ``FIT_LOG`` (class attribute) collects ``(set of sites, n_rows, weights-by-site)`` per
    fit in this process; with ``log_path`` set, one line ``pid site,site,...`` per fit is
    also appended to that file (for subprocess tests). ``sleep`` [s] slows every fit.
    """

    name = "test_spy"
    multi_target = True
    FIT_LOG: list = []

    def __init__(self, sleep: float = 0.0, log_path: str | None = None, random_state: int | None = 0):
        self.sleep = sleep
        self.log_path = log_path
        self.random_state = random_state

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        s = set(map(str, np.unique(np.asarray(sites))))
        wmap = None
        if sample_weight is not None:
            wmap = pd.Series(np.asarray(sample_weight)).groupby(np.asarray(sites)).first().to_dict()
        SpyLearner.FIT_LOG.append((s, len(X), wmap))
        if self.log_path:
            with open(self.log_path, "a") as fh:
                fh.write(f"{os.getpid()} {','.join(sorted(s))}\n")
        if self.sleep:
            time.sleep(self.sleep)
        self.mean_ = np.nanmean(y.to_numpy(dtype=float, na_value=np.nan), axis=0)
        return self

    def predict(self, X, *, sites, dates):
        return np.tile(self.mean_, (len(X), 1))


class FailingLearner(SpyLearner):
    """Spy that raises in ``fit`` while the file ``fail_flag`` exists and the training pool
    lacks ``fail_without`` (a site id), i.e. in that site's fold."""

    name = "test_fail"

    def __init__(self, fail_without: str | None = None, fail_flag: str | None = None,
                 sleep: float = 0.0, log_path: str | None = None, random_state: int | None = 0):
        super().__init__(sleep=sleep, log_path=log_path, random_state=random_state)
        self.fail_without = fail_without
        self.fail_flag = fail_flag

    def fit(self, X, y, *, sites, dates, sample_weight=None):
        if (self.fail_flag and os.path.exists(self.fail_flag)
                and self.fail_without not in set(map(str, np.asarray(sites)))):
            raise RuntimeError(f"planned failure: {self.fail_without} held out")
        return super().fit(X, y, sites=sites, dates=dates, sample_weight=sample_weight)


TEST_LEARNERS = {"test_ols": OLSLearner, "test_spy": SpyLearner, "test_fail": FailingLearner}


def register_test_learners() -> None:
    _REGISTRY.update(TEST_LEARNERS)


def unregister_test_learners() -> None:
    for k in TEST_LEARNERS:
        _REGISTRY.pop(k, None)


@contextlib.contextmanager
def test_learners():
    register_test_learners()
    try:
        yield
    finally:
        unregister_test_learners()


test_learners.__test__ = False
