"""Monthly tower workflow ("tower cells"): monthly towers, NARCF-like inputs, two honest evaluations.

The North American Regional Carbon Flux model (NARCF, seed ``001``) learns monthly net
fluxes from regional drivers. No gridded inversion fluxes are available offline, so this
module does the same at the towers, aggregated to months: the FLUXNET2015 daily table plus
the monthly drivers of ``monthly_rs.csv`` (:func:`load_monthly_towers`), and evaluates mlp,
rf and mlr in two ways that never let anything fitted see the evaluation data:

Temporal hold-out (:func:`temporal_holdout`)
    Split rule (:func:`temporal_split`): for every site, its *observed years* are the
    calendar years with at least one finite target month; the last
    ``max(1, round(test_fraction x n))`` of its ``n`` observed years (default
    ``test_fraction=0.3``, never all of them) are its test years, and every month of the site
    before the first test year is a training month. A site with fewer than two observed years
    is not tested (all its months train). One model per learner is trained on the training
    months of all sites together and predicts the test months of every site. Alternatively
    ``cutoff_year=Y`` makes one calendar split for every site (train before ``Y``, test from
    ``Y`` on: NARCF's split with ``Y = 2015``). Scalers and early stopping see training
    months only; the mlp validates on the last training years of each site
    (``val_by="years"``), never on the test years.

Leave-one-site-out (:func:`monthly_loso`)
    The runner (:func:`fluxcore.runner.run_loso`) on the monthly dataset: one fold per test
    site, trained on every other site's months (fast strategies: ``mlr_exact``,
    ``rf_site_oob``, ``group_holdout`` for mlp: no model sees its test site).

Scores (:func:`score_predictions`) are pooled over all test months of all sites, as NARCF's
r is pooled over its cell-months: Pearson ``r`` [-] (NARCF's metric), ``R2`` = 1 - SSE/SST
[-], ``RMSE`` and ``MAE`` [gC m-2 month-1], ``bias``, ``n`` months and ``n_sites``; plus the
median over test sites of the per-site ``r`` and ``R2``. Each score is given for all test
sites (``subset="all"``) and for the North-American ones (``subset="north_america"``: site
ids starting with ``US-``, ``CA-`` or ``MX-``, as NARCF's domain).

Features
--------
:func:`tower_feature_config` (default of both evaluations): the monthly features of
:func:`fluxcore.timeres.monthly_feature_config` without the ``SITE_MEAN_*`` features, which
average a site's drivers over its whole record and so would carry test-period drivers into
training months of the temporal hold-out. :func:`narcf_feature_config`: the NARCF inputs that
exist at the towers (meteorology ``TA, TMIN, TMAX, VPD, SW_IN, P, WS``; remote sensing
``LAI, EVI`` in place of NIRv / NDVI / SIF; land cover as one-hot ``IGBP`` classes in place of
the 18 land-cover fractions) and nothing else (no calendar, latitude or potential radiation,
which NARCF removed because they carried the answer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import RunConfig
from .dataset import FluxDataset
from .errors import ConfigError, DataError
from .features import FeatureConfig, build_features
from .learners import PerTarget, make_learner
from .metrics import pearson_r2, r2_score, scores
from .runner import run_loso
from .runstore import RunStore
from .sources import load_dataset
from .timeres import monthly_feature_config, to_monthly, unit_of

__all__ = [
    "NORTH_AMERICA_PREFIXES", "DEFAULT_LEARNERS", "MONTHLY_PARAMS", "NARCF_DRIVERS",
    "MonthlyEvaluation", "north_american_sites", "load_monthly_towers", "tower_feature_config",
    "narcf_feature_config", "temporal_split", "temporal_holdout", "monthly_loso",
    "score_predictions", "pearson_r",
]

#: Site-id prefixes of North-American towers (NARCF's domain)
NORTH_AMERICA_PREFIXES = ("US-", "CA-", "MX-")
DEFAULT_LEARNERS = ("mlp", "rf", "mlr")
#: Monthly defaults per learner (overridden by ``params``): rf grows each tree on a full
#: bootstrap sample (its daily default of 10 % is meant for half a million site-days; a
#: monthly table has a few thousand rows).
MONTHLY_PARAMS: dict[str, dict[str, Any]] = {"rf": {"max_samples": None}}
#: NARCF-like drivers available at the towers (meteorology, then remote sensing)
NARCF_DRIVERS = ("TA", "TMIN", "TMAX", "VPD", "SW_IN", "P", "WS", "LAI", "EVI")
PREDICTION_COLUMNS = ["SITE_ID", "DATE", "learner", "target", "observed", "predicted"]
SCORE_COLUMNS = ["evaluation", "subset", "learner", "target", "r", "R2", "RMSE", "MAE", "bias",
                 "n", "n_sites", "site_median_r", "site_median_R2"]


@dataclass
class MonthlyEvaluation:
    """Result of :func:`temporal_holdout` or :func:`monthly_loso`.

    Attributes
    ----------
    evaluation : str
        ``"temporal"`` or ``"loso"``.
    predictions : pandas.DataFrame
        ``SITE_ID, DATE, learner, target, observed, predicted`` [gC m-2 month-1] of the test
        months.
    scores : pandas.DataFrame
        :func:`score_predictions` of ``predictions`` (columns :data:`SCORE_COLUMNS`).
    info : dict
        How it was computed (split, sites, features, learners' parameters, run folder...).
    """

    evaluation: str
    predictions: pd.DataFrame
    scores: pd.DataFrame
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------------------ data
def north_american_sites(sites: FluxDataset | Sequence[str]) -> list[str]:
    """Site ids starting with ``US-``, ``CA-`` or ``MX-`` (of a dataset or a list), sorted."""
    ids = sites.site_ids if isinstance(sites, FluxDataset) else [str(s) for s in sites]
    return sorted(s for s in ids if s.startswith(NORTH_AMERICA_PREFIXES))


def load_monthly_towers(folder: str | Path, *, min_valid_fraction: float = 0.5, qc: dict | None = None,
                        sites: Sequence[str] | None = None) -> FluxDataset:
    """Towers of a prepared FLUXNET2015 folder aggregated to months, with its monthly drivers.

    Parameters
    ----------
    folder : path
        Prepared folder (``daily.parquet``, ``sites.csv``, optionally ``monthly_rs.csv``).
    min_valid_fraction : float, default 0.5
        Passed to :func:`fluxcore.timeres.to_monthly`.
    qc : dict, optional
        QC options for :func:`fluxcore.sources.load_dataset`.
    sites : sequence of str, optional
        Keep only these sites (e.g. :func:`north_american_sites`).

    Returns
    -------
    FluxDataset
        ``time_step="monthly"``; fluxes [gC m-2 month-1]; ``LAI, EVI, P, WS`` from
        ``monthly_rs.csv`` when the folder has it.
    """
    folder = Path(folder)
    daily = load_dataset(folder, qc=qc)
    rs = folder / "monthly_rs.csv"
    monthly = to_monthly(daily, min_valid_fraction, monthly_drivers=rs if rs.is_file() else None)
    if sites is not None:
        monthly = monthly.subset(sites=list(sites))
    return monthly


def tower_feature_config(**overrides: Any) -> FeatureConfig:
    """Monthly features without per-site record means (see the module docstring)."""
    return monthly_feature_config(**{"site_means": (), **overrides})


def narcf_feature_config(dataset: FluxDataset | None = None, **overrides: Any) -> FeatureConfig:
    """NARCF's inputs that exist at the towers: drivers of :data:`NARCF_DRIVERS` + IGBP one-hot.

    With ``dataset``, the drivers it lacks are left out (without, all must be present).
    """
    variables = list(NARCF_DRIVERS)
    if dataset is not None:
        variables = [v for v in variables if v in dataset.variables]
    base = {"variables": tuple(variables), "doy": False, "potential_radiation": False,
            "temperature_range": False, "rolling_variables": (), "rolling_windows": (3,),
            "absorbed_radiation": False, "site_means": (), "site_attributes": (), "igbp": True}
    return FeatureConfig.from_dict({**base, **overrides})


def _check_monthly(dataset: FluxDataset, targets: Sequence[str]) -> None:
    if not isinstance(dataset, FluxDataset):
        raise ConfigError(f"dataset must be a FluxDataset, got {type(dataset).__name__}")
    if dataset.time_step != "monthly":
        raise ConfigError(f"dataset {dataset.name!r} is {dataset.time_step}; the monthly workflow needs "
                          "monthly data (fluxcore.timeres.to_monthly or load_monthly_towers)")
    if not targets:
        raise ConfigError("no target given; choose from GPP, ER, NEE")
    missing = [t for t in targets if t not in dataset.targets]
    if missing:
        raise ConfigError(f"target(s) {missing} not in dataset {dataset.name!r} (it has {dataset.targets})")


def _params(name: str, params: Mapping[str, Mapping[str, Any]] | None, seed: int,
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    p = {**MONTHLY_PARAMS.get(name, {}), **(extra or {}), **dict((params or {}).get(name, {}))}
    learner = make_learner(name)
    if "random_state" in learner.get_params() and "random_state" not in p:
        p["random_state"] = int(seed)
    return p


# -------------------------------------------------------------------- temporal
def temporal_split(sites: np.ndarray, dates: np.ndarray, observed: np.ndarray | None = None, *,
                   test_fraction: float = 0.3, cutoff_year: int | None = None) -> np.ndarray:
    """Test months of the temporal hold-out (True) and training months (False).

    Parameters
    ----------
    sites, dates : numpy.ndarray, shape (n,)
        Site id and month of each row.
    observed : numpy.ndarray, shape (n,) or (n, k), optional
        Targets; a year counts as observed for a site when one of its rows has a finite
        value. Default: every year with a row counts.
    test_fraction : float, default 0.3
        Share of each site's observed years held out at its end (0 < f < 1).
    cutoff_year : int, optional
        One calendar split for all sites instead: test from this year on.

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True for test rows. Per site: the last ``max(1, round(test_fraction x n))`` of its
        ``n`` observed years (at most ``n - 1``) and every later row; sites with fewer than two
        observed years have no test row.
    """
    sites = np.asarray(sites).astype(str)
    year = pd.DatetimeIndex(np.asarray(dates).astype("datetime64[ns]")).year.to_numpy()
    if cutoff_year is not None:
        if isinstance(cutoff_year, bool) or not isinstance(cutoff_year, (int, np.integer)):
            raise ConfigError(f"cutoff_year must be an integer year, got {cutoff_year!r}")
        return year >= int(cutoff_year)
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if observed is None:
        has = np.ones(len(sites), dtype=bool)
    else:
        obs = np.asarray(observed, dtype=float).reshape(len(sites), -1)
        has = np.isfinite(obs).any(axis=1)
    test = np.zeros(len(sites), dtype=bool)
    for s in np.unique(sites):
        k = sites == s
        yrs = np.unique(year[k & has])
        if len(yrs) < 2:
            continue
        n_test = min(max(1, int(round(f * len(yrs)))), len(yrs) - 1)
        test[k] = year[k] >= yrs[-n_test]
    return test


def _multi(learner):
    return learner if learner.get_tag("multi_target", False) else PerTarget(learner)


def temporal_holdout(dataset: FluxDataset, learners: Sequence[str] = DEFAULT_LEARNERS, *,
                     targets: Sequence[str] = ("NEE",), sites: Sequence[str] | None = None,
                     test_fraction: float = 0.3, cutoff_year: int | None = None,
                     features: FeatureConfig | Mapping | None = None,
                     params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0) -> MonthlyEvaluation:
    """Train on earlier years, test on later years (see :func:`temporal_split`).

    Parameters
    ----------
    dataset : FluxDataset
        Monthly towers (``time_step="monthly"``).
    learners : sequence of str
        Registered learners (default mlp, rf, mlr), each fitted once.
    targets : sequence of str, default ("NEE",)
        Targets [gC m-2 month-1]; NARCF predicts the net flux.
    sites : sequence of str, optional
        Use only these sites (training and test); default all.
    test_fraction, cutoff_year
        The split rule (:func:`temporal_split`).
    features : FeatureConfig or dict, optional
        Default :func:`tower_feature_config`.
    params : dict, optional
        Hyperparameters per learner; the mlp defaults to ``val_by="years"``.
    seed : int, default 0
        ``random_state`` of every learner that has one (unless in ``params``).

    Returns
    -------
    MonthlyEvaluation
        ``info`` has ``train_rows``, ``test_rows``, ``test_sites``, ``split`` and the
        learners' parameters.
    """
    targets = list(targets)
    _check_monthly(dataset, targets)
    ds = dataset if sites is None else dataset.subset(sites=list(sites))
    cfg = features if isinstance(features, FeatureConfig) else (
        tower_feature_config() if features is None else FeatureConfig.from_dict(dict(features)))
    ft = build_features(ds, cfg, targets)
    X, Y = ft.X.reset_index(drop=True), ft.y[targets].reset_index(drop=True)
    s, d = np.asarray(ft.sites).astype(str), np.asarray(ft.dates)
    test = temporal_split(s, d, Y.to_numpy(dtype=float), test_fraction=test_fraction, cutoff_year=cutoff_year)
    tr = np.flatnonzero(~test & np.isfinite(Y.to_numpy(dtype=float)).any(axis=1))
    te = np.flatnonzero(test)
    if len(tr) == 0 or len(te) == 0:
        raise DataError(None, f"temporal hold-out: {len(tr)} training and {len(te)} test months "
                              f"(test_fraction={test_fraction}, cutoff_year={cutoff_year}); need both")
    frames, used = [], {}
    for name in learners:
        p = _params(name, params, seed, {"val_by": "years"} if name == "mlp" else None)
        model = _multi(make_learner(name, **p))
        model.fit(X.iloc[tr], Y.iloc[tr], sites=s[tr], dates=d[tr])
        pred = np.asarray(model.predict(X.iloc[te], sites=s[te], dates=d[te]), dtype=float).reshape(len(te), -1)
        frames.append(_long(s[te], d[te], name, targets, Y.iloc[te].to_numpy(dtype=float), pred))
        used[name] = p
    preds = pd.concat(frames, ignore_index=True)
    split = ({"rule": "cutoff_year", "cutoff_year": int(cutoff_year)} if cutoff_year is not None else
             {"rule": "last years per site", "test_fraction": float(test_fraction)})
    info = {"split": split, "train_rows": int(len(tr)), "test_rows": int(len(te)),
            "train_sites": sorted(set(s[tr])), "test_sites": sorted(set(s[te])),
            "features": list(X.columns), "params": used, "targets": targets,
            "units": {t: unit_of(t, "monthly") for t in targets}}
    return MonthlyEvaluation("temporal", preds, score_predictions(preds, "temporal"), info)


def _long(sites, dates, learner, targets, obs, pred) -> pd.DataFrame:
    k, n = len(targets), len(sites)
    return pd.DataFrame({
        "SITE_ID": np.tile(np.asarray(sites, dtype=object), k).astype(str),
        "DATE": np.tile(np.asarray(dates), k),
        "learner": learner,
        "target": np.repeat(np.asarray(targets, dtype=object), n).astype(str),
        "observed": np.asarray(obs, dtype=float).T.ravel(),
        "predicted": np.asarray(pred, dtype=float).T.ravel(),
    })[PREDICTION_COLUMNS]


# ------------------------------------------------------------------------ LOSO
def monthly_loso(dataset: FluxDataset, learners: Sequence[str] = DEFAULT_LEARNERS, *,
                 targets: Sequence[str] = ("NEE",), sites: Sequence[str] | None = None,
                 features: FeatureConfig | Mapping | None = None,
                 params: Mapping[str, Mapping[str, Any]] | None = None, seed: int = 0,
                 runs_dir: str | Path = "runs", strategy: str = "fast",
                 strategy_options: Mapping[str, Mapping[str, Any]] | None = None,
                 jobs: int = 1) -> MonthlyEvaluation:
    """Leave-one-site-out on monthly towers through :func:`fluxcore.runner.run_loso`.

    Parameters
    ----------
    dataset : FluxDataset
        Monthly towers; every site of it is in the training pool of the other sites' folds
        (subset the dataset first to train on a region only, e.g. North America).
    learners, targets, features, params, seed
        As in :func:`temporal_holdout` (the mlp validates on held-out training sites).
    sites : sequence of str, optional
        Test sites (default all).
    runs_dir : path
        Run folders (a stored identical run is read back, not recomputed).
    strategy, strategy_options, jobs
        As in :class:`fluxcore.config.RunConfig` / :func:`run_loso`.

    Returns
    -------
    MonthlyEvaluation
        ``info["run_dir"]`` is the run folder.
    """
    targets = list(targets)
    _check_monthly(dataset, targets)
    cfg = features if isinstance(features, FeatureConfig) else (
        tower_feature_config() if features is None else FeatureConfig.from_dict(dict(features)))
    rc = RunConfig(data=str(dataset.source or dataset.name), learners=list(learners), targets=targets,
                   sites=None if sites is None else sorted(str(x) for x in sites),
                   features=cfg.to_dict(), params={n: _params(n, params, seed) for n in learners},
                   seed=int(seed), strategy=strategy,
                   strategy_options={k: dict(v) for k, v in (strategy_options or {}).items()})
    run_dir = run_loso(rc, dataset=dataset, runs_dir=runs_dir, jobs=jobs)
    preds = pd.read_parquet(Path(run_dir) / "predictions.parquet")
    preds = preds[np.isfinite(preds["observed"].to_numpy(dtype=float))].reset_index(drop=True)
    manifest = RunStore(run_dir).read_manifest()
    info = {"run_dir": str(run_dir), "n_folds": manifest.get("n_folds"), "skipped": manifest.get("skipped"),
            "test_sites": sorted(preds["SITE_ID"].unique().tolist()), "params": rc.params,
            "strategy": strategy, "targets": targets, "features": cfg.to_dict(),
            "units": {t: unit_of(t, "monthly") for t in targets}}
    return MonthlyEvaluation("loso", preds[PREDICTION_COLUMNS], score_predictions(preds, "loso"), info)


# ---------------------------------------------------------------------- scores
def pearson_r(observed, predicted) -> float:
    """Pearson correlation r [-] (signed; NaN pairs ignored; NaN when undefined)."""
    o = np.asarray(observed, dtype=float).ravel()
    p = np.asarray(predicted, dtype=float).ravel()
    ok = np.isfinite(o) & np.isfinite(p)
    r2 = pearson_r2(o[ok], p[ok])
    if not np.isfinite(r2):
        return float("nan")
    cov = float(np.sum((o[ok] - o[ok].mean()) * (p[ok] - p[ok].mean())))
    return float(np.sign(cov) * np.sqrt(r2))


def score_predictions(predictions: pd.DataFrame, evaluation: str = "") -> pd.DataFrame:
    """Pooled and per-site-median skill by subset, learner and target (see module docstring).

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``SITE_ID, learner, target, observed, predicted``.
    evaluation : str
        Label put in the ``evaluation`` column.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORE_COLUMNS`; ``RMSE``, ``MAE``, ``bias`` in the targets' units
        [gC m-2 month-1 for monthly fluxes].
    """
    missing = [c for c in ("SITE_ID", "learner", "target", "observed", "predicted") if c not in predictions]
    if missing:
        raise DataError(None, f"predictions lack column(s) {missing}")
    ok = np.isfinite(predictions["observed"].to_numpy(dtype=float)) & np.isfinite(
        predictions["predicted"].to_numpy(dtype=float))
    pr = predictions[ok]
    na = pr["SITE_ID"].astype(str).str.startswith(NORTH_AMERICA_PREFIXES)
    rows = []
    for subset, part in (("all", pr), ("north_america", pr[na])):
        for (lrn, tgt), g in part.groupby(["learner", "target"], sort=True):
            o, p = g["observed"].to_numpy(dtype=float), g["predicted"].to_numpy(dtype=float)
            sc = scores(o, p)
            per_site = [(pearson_r(x["observed"], x["predicted"]), r2_score(x["observed"], x["predicted"]))
                        for _, x in g.groupby("SITE_ID")]
            ps = np.array(per_site, dtype=float).reshape(-1, 2)
            rows.append({"evaluation": evaluation, "subset": subset, "learner": lrn, "target": tgt,
                         "r": pearson_r(o, p), "R2": sc["R2"], "RMSE": sc["RMSE"], "MAE": sc["MAE"],
                         "bias": sc["bias"], "n": sc["n"], "n_sites": int(g["SITE_ID"].nunique()),
                         "site_median_r": float(np.nanmedian(ps[:, 0])) if np.isfinite(ps[:, 0]).any() else np.nan,
                         "site_median_R2": float(np.nanmedian(ps[:, 1])) if np.isfinite(ps[:, 1]).any() else np.nan})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
