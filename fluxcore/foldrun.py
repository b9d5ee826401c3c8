"""One fold of a leave-one-site-out run: the data sent to workers, fitting and predicting.

One *fold* is one (learner, test site): the learner is trained on the rows of the fold's
training pool (:func:`fluxcore.folds.fold_train_sites`; the test site is never in it) and
predicts every target for every day of the test site. Features are built once per run
(:func:`fluxcore.features.build_features`: per-site, past-only derived features that never
use targets), so the feature table itself carries no information across sites; everything
fitted (scalers, imputers, early stopping, fuzzy weights) is fitted inside the fold on the
pool rows only.

Few-shot learners (tag ``few_shot``, :mod:`fluxcore.fewshot`) also get, at prediction time
and through ``predict(..., context=)`` only, the observed fluxes of the rows they name with
``context_rows`` (the first ``k`` months of the test site); those rows are then marked as not
scored (``predicted`` NaN) in the fold's predictions.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import fuzzy
from .config import RunConfig, check_learner_params
from .errors import ConfigError
from .features import FeatureConfig, build_features
from .fewshot import context_frame, context_rows
from .learners import available_learners
from .runstore import PREDICTION_COLUMNS

__all__ = [
    "FoldData", "build_fold_data", "FoldTask", "fit_fold", "predict_fold", "compute_fold",
    "fold_frame", "test_rows", "resolve_learners", "make_task",
]


@dataclass
class FoldData:
    """The run's feature table, sent once to every worker.

    Attributes
    ----------
    X : pandas.DataFrame
        Features (one row per site-day, or site-month), index 0..n-1.
    y : pandas.DataFrame
        The run's targets, same rows.
    sites : numpy.ndarray of str
        Site (or grid-cell) id of each row.
    dates : numpy.ndarray of datetime64[ns]
        Date of each row.
    feature_names : list of str
    site_codes : numpy.ndarray of int
        Position of each row's site in :attr:`site_uniques`.
    site_uniques : numpy.ndarray of str
        Site ids in order of first appearance.
    source : str
        Where the features come from (``"fluxcore.features"``).
    pretrain : object or None
        The run's :class:`fluxcore.pretrain.PretrainStage` (source targets), if any.
    """

    X: pd.DataFrame
    y: pd.DataFrame
    sites: np.ndarray
    dates: np.ndarray
    feature_names: list[str]
    site_codes: np.ndarray
    site_uniques: np.ndarray
    source: str = "fluxcore.features"
    pretrain: Any = None

    def rows_of(self, site_list) -> np.ndarray:
        """Boolean mask of the rows of the sites in ``site_list``."""
        idx = np.flatnonzero(np.isin(self.site_uniques, np.asarray(list(site_list), dtype=str)))
        return np.isin(self.site_codes, idx)

    def test_rows(self, site: str) -> np.ndarray:
        """Positions of the rows of ``site`` (increasing)."""
        code = np.flatnonzero(self.site_uniques == site)
        return np.flatnonzero(self.site_codes == code[0]) if code.size else np.zeros(0, int)


def build_fold_data(dataset, config: RunConfig) -> FoldData:
    """The run's feature table (:func:`fluxcore.features.build_features` with ``config.features``)."""
    ft = build_features(dataset, FeatureConfig.from_dict(dict(config.features)), list(config.targets))
    X = ft.X.reset_index(drop=True)
    y = ft.y[list(config.targets)].reset_index(drop=True)
    sites = np.asarray(ft.sites).astype(str)
    codes, uniques = pd.factorize(sites)
    return FoldData(X=X, y=y, sites=sites, dates=np.asarray(ft.dates),
                    feature_names=list(getattr(ft, "feature_names", X.columns)),
                    site_codes=codes, site_uniques=np.asarray(uniques, dtype=str))


def test_rows(data: FoldData, site: str) -> np.ndarray:
    """Positions of the rows of ``site`` in the feature table (increasing)."""
    return data.test_rows(site)


test_rows.__test__ = False  # not a pytest test


@dataclass
class FoldTask:
    """Everything a worker needs for one fold (small; the feature table is sent once)."""

    learner: str                  # name in the config (column ``learner`` of the results)
    template: Any                 # unfitted FluxLearner (cloned before fitting)
    test_site: str
    train_sites: list
    targets: list
    weights: dict | None = None   # membership per training site (fuzzy variants)
    torch_threads: int | None = None
    models: Any = None            # model store (RunStore) for pre-trained models, or None


def _set_torch_threads(task: FoldTask) -> None:
    if task.torch_threads and (task.template.get_tag("sequence", False) or "torch" in sys.modules):
        try:
            import torch

            torch.set_num_threads(int(task.torch_threads))
        except ImportError:
            pass


def _fit_one(template, data: FoldData, task: FoldTask, tr: np.ndarray, ytr: pd.DataFrame, sw):
    """Fit a clone of ``template`` on rows ``tr`` (pre-trained first when the run asks for it)."""
    X, sites, dates = data.X, data.sites, data.dates
    kw = {"sites": sites[tr], "dates": dates[tr]}
    stage = data.pretrain
    if stage is None or not template.get_tag("fine_tune", False) or not stage.applies_to(task.learner):
        return template.clone().fit(X.iloc[tr], ytr, **kw, sample_weight=sw)
    stage = stage.bound(data.y, None if task.models is None else task.models.path / "pretrain")
    name = "pretrain-" + task.test_site
    model = None
    if task.models is not None:
        state = task.models.load_model(task.learner, name)
        if state is not None:
            model = template.clone().set_state(state)
    if model is None:
        pre_rows = tr if not stage.config.transductive else np.union1d(tr, data.test_rows(task.test_site))
        model = stage.pretrain(template.clone(), X, rows=pre_rows, sites=sites, dates=dates, fit_rows=tr)
        if task.models is not None:
            task.models.save_model(task.learner, name, model.get_state())
    return stage.finetune(model, X.iloc[tr], ytr, **kw)


def fit_fold(data: FoldData, task: FoldTask) -> tuple[list, np.ndarray]:
    """Fit the fold's learner(s) on the training-pool rows only.

    Returns ``(models, train_rows)``: one fitted learner for a multi-target learner, else one
    per target (in ``task.targets`` order), and the positions of the rows used for fitting.
    The test site's rows never reach ``fit`` (so neither its scalers, imputers, early
    stopping nor feature selection); fuzzy weights of 0 drop a site's rows.
    """
    if task.test_site in set(task.train_sites):  # guard: never train on the test site
        raise RuntimeError(f"fold {task.learner}/{task.test_site}: test site in training pool")
    _set_torch_threads(task)
    train = data.rows_of(task.train_sites)
    sw = None
    if task.weights is not None:
        w_site = np.array([float(task.weights.get(s, 0.0)) for s in data.site_uniques])
        w_row = w_site[data.site_codes]
        train &= w_row > 0
        sw = w_row[train]
    if not train.any():
        raise RuntimeError(f"fold {task.learner}/{task.test_site}: no training rows")
    tr = np.flatnonzero(train)
    ytr = data.y.iloc[tr][list(task.targets)]
    template = task.template
    if task.torch_threads and "n_threads" in template.get_params():
        template = template.clone().set_params(n_threads=int(task.torch_threads))
    if template.get_tag("multi_target", False):
        return [_fit_one(template, data, task, tr, ytr, sw)], tr
    return [_fit_one(template, data, task, tr, ytr[[t]], sw) for t in task.targets], tr


def predict_fold(models: list, X: pd.DataFrame, sites: np.ndarray, dates: np.ndarray,
                 n_targets: int, context: pd.DataFrame | None = None) -> np.ndarray:
    """Predictions ``(n_rows, n_targets)`` of the models returned by :func:`fit_fold`.

    ``context``: observed fluxes for a few-shot learner (:func:`fluxcore.fewshot.context_frame`),
    passed to ``predict`` only when given.
    """
    kw: dict[str, Any] = {"sites": sites, "dates": dates}
    if context is not None:
        kw["context"] = context
    if len(models) == 1 and models[0].get_tag("multi_target", False):
        pred = np.asarray(models[0].predict(X, **kw), dtype=float).reshape(len(X), -1)
    else:
        pred = np.column_stack([np.asarray(m.predict(X, **kw), dtype=float).reshape(len(X), -1)[:, 0]
                                for m in models])
    if pred.shape != (len(X), n_targets):
        raise RuntimeError(f"learner returned predictions of shape {pred.shape}, expected {(len(X), n_targets)}")
    return pred


def fold_frame(data: FoldData, site: str, learner: str, targets, rows: np.ndarray,
               pred: np.ndarray) -> pd.DataFrame:
    """Long predictions ``SITE_ID, DATE, learner, target, observed, predicted`` of one fold."""
    k = len(targets)
    obs = data.y.iloc[rows][list(targets)].to_numpy(dtype=float)
    out = pd.DataFrame({
        "SITE_ID": np.full(len(rows) * k, site, dtype=object).astype(str),
        "DATE": np.tile(data.dates[rows], k),
        "learner": learner,
        "target": np.repeat(np.asarray(list(targets), dtype=object), len(rows)).astype(str),
        "observed": obs.T.ravel(),
        "predicted": np.asarray(pred, dtype=float).T.ravel(),
    })
    return out[PREDICTION_COLUMNS]


def compute_fold(data: FoldData, task: FoldTask) -> tuple[pd.DataFrame, dict]:
    """Train on the pool rows and predict the test site (runs in a worker).

    Returns
    -------
    (pandas.DataFrame, dict)
        Long predictions ``SITE_ID, DATE, learner, target, observed, predicted`` for the
        test site, and fold info (``seconds``, ``n_train_rows``, ``n_train_sites``,
        ``val_sites``: early-stopping validation sites when the learner records them).
    """
    t0 = time.perf_counter()
    models, tr = fit_fold(data, task)
    te = data.test_rows(task.test_site)
    shots = context_rows(models[0], data.sites[te], data.dates[te])  # few-shot: first k months
    ctx = None if shots is None else context_frame(data.y.iloc[te][list(task.targets)],
                                                   data.sites[te], data.dates[te], shots)
    pred = predict_fold(models, data.X.iloc[te], data.sites[te], data.dates[te], len(task.targets), ctx)
    if shots is not None:
        pred[shots] = np.nan  # their fluxes were seen: not scored
    out = fold_frame(data, task.test_site, task.learner, task.targets, te, pred)
    val: set[str] = set()
    for m in models:
        vs = getattr(m, "val_sites_", None)
        val |= {str(s) for s in ([] if vs is None else vs)}
    info = {"seconds": time.perf_counter() - t0, "n_train_rows": int(len(tr)),
            "n_train_sites": len(task.train_sites), "val_sites": sorted(val)}
    if shots is not None:
        info["context_rows"] = int(shots.sum())
    return out, info


def resolve_learners(config: RunConfig, dataset) -> dict[str, tuple[Any, Callable | None]]:
    """``{name: (unfitted learner, weight_fn or None)}`` for every learner of the config."""
    registry = set(available_learners())
    out = {}
    for name in config.learners:
        params = dict(config.params.get(name, {}))
        learner = check_learner_params(name, params)
        if name in registry:
            out[name] = (learner, None)
            continue
        if learner is None:
            raise ConfigError(f"unknown learner {name!r}; available: {', '.join(sorted(registry))}")
        v = fuzzy.make_variant(name, dataset, params, random_state=config.seed)
        out[name] = (v.learner, v.weight_fn)
    return out


def make_task(config: RunConfig, learners: dict, learner: str, test_site: str, pool: list[str],
              torch_threads: int | None = None, models: Any = None) -> FoldTask:
    """The fold task of (``learner``, ``test_site``); fuzzy weights computed here (driver side).

    ``learners`` is the output of :func:`resolve_learners`; ``pool`` the fold's training sites.
    """
    template, weight_fn = learners[learner]
    weights = None
    if weight_fn is not None:
        mu = weight_fn(list(pool), test_site)
        weights = {str(k): float(v) for k, v in mu.items()}
        if test_site in weights:
            raise RuntimeError(f"fold {learner}/{test_site}: weight_fn returned the test site")
    return FoldTask(learner, template, test_site, list(pool), list(config.targets), weights,
                    torch_threads=torch_threads, models=models)
