"""Leave-one-site-out (LOSO) cross-validation runner and the ``fluxcore loso`` / ``runs`` CLI.

One *fold* is one (learner, test site): the learner is trained on the rows of the fold's
training pool (:func:`fold_train_sites`; the test site is never in it) and predicts every
target for every day of the test site. Features are built once per run
(``fluxcore.features.build_features``: per-site, past-only derived features that never use
targets), so the feature table itself carries no information across sites; everything
fitted (scalers, imputers, early stopping, fuzzy weights) is fitted inside the fold on the
pool rows only.

Results go to a run folder keyed by data + config + code (:mod:`fluxcore.runstore`), which
makes identical requests free, lets an interrupted run resume and lets several processes
share one run. Folds can run in local processes or on Dask (:mod:`fluxcore.parallel`).

Reference: Gao et al. (2025), leave-one-site-out validation of LSTM, RF, SVM and MLR.
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import RunConfig, test_sites
from .errors import ConfigError, DataError, FluxcoreError
from .runstore import (
    PREDICTION_COLUMNS,
    RunResult,
    RunStore,
    atomic_write_bytes,
    atomic_write_parquet,
    delete_run,
    fold_id,
    list_runs,
    load_run,
    now_iso,
    run_key,
)

__all__ = [
    "RunConfig", "RunResult", "run_loso", "fold_train_sites", "plan_folds", "load_run",
    "list_runs", "delete_run", "compute_fold", "fit_fold", "predict_fold", "FoldTask", "TextProgress", "add_cli",
    "build_feature_table", "prepare_run", "make_task", "resolve_learners", "run_fast_batches",
    "fold_frame", "test_rows",
]

ProgressFn = Callable[[int, int, "float | None", str], None]


class RunCancelled(FluxcoreError):
    """Raised inside the runner when the caller asked to stop (the run can be resumed)."""


# -------------------------------------------------------------------- training pool
def fold_train_sites(config: RunConfig, dataset, test_site: str) -> list[str]:
    """Training sites of the fold that holds out ``test_site``.

    ``pool="all"``: every other site of the dataset; ``pool="zone"``: every other site in
    the test site's aridity zone (none when the test site's zone is unknown). Sites are
    training sites whether or not they are test sites themselves. Sorted.
    """
    sites = dataset.site_ids
    if config.pool == "all":
        return [s for s in sites if s != test_site]
    if config.pool != "zone":
        raise ConfigError(f"unknown pool {config.pool!r}; choose 'all' or 'zone'")
    zones = dataset.sites["ARIDITY_ZONE"]
    zone = dataset.zone_of(test_site)
    if zone is None:
        return []
    same = set(zones.index[zones == zone].astype(str))
    return [s for s in sites if s != test_site and s in same]


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


def plan_folds(config: RunConfig, dataset) -> tuple[list[tuple[str, str, list[str]]], list[dict]]:
    """All folds of a run: ``[(learner, test_site, train_sites)]`` and the skipped ones.

    A fold whose pool has fewer than ``config.min_train_sites`` sites is skipped (listed
    with the reason), e.g. the only arid site with ``pool="zone"``.
    """
    tests = test_sites(config, dataset)
    pools = {s: fold_train_sites(config, dataset, s) for s in tests}
    folds, skipped = [], []
    for learner in config.learners:
        for s in tests:
            if len(pools[s]) < config.min_train_sites:
                skipped.append({"fold": fold_id(learner, s),
                                "reason": f"{len(pools[s])} training site(s) < min_train_sites="
                                          f"{config.min_train_sites} (pool={config.pool})"})
            else:
                folds.append((learner, s, pools[s]))
    return folds, skipped


# ------------------------------------------------------------------------ features
def build_feature_table(dataset, config: RunConfig) -> dict:
    """The run's feature table as the payload sent to workers.

    Returns a dict with ``X`` (DataFrame of features), ``y`` (DataFrame of the run's
    targets), ``sites`` (str array), ``dates`` (datetime64 array), ``feature_names`` and
    ``source`` (``"fluxcore.features"`` or ``"basic"`` when fluxcore.features is absent: the
    dataset's drivers and statics as they are).
    """
    try:
        from .features import FeatureConfig, build_features
    except ImportError:
        frame = dataset.frame()
        names = dataset.drivers + dataset.statics
        X = frame[names].astype(float).reset_index(drop=True)
        y = frame[list(config.targets)].astype(float).reset_index(drop=True)
        sites = frame["SITE_ID"].astype(str).to_numpy()
        dates = frame["DATE"].to_numpy()
        source = "basic"
    else:
        ft = build_features(dataset, FeatureConfig.from_dict(dict(config.features))
                            if hasattr(FeatureConfig, "from_dict") else FeatureConfig(**config.features),
                            list(config.targets))
        X = ft.X.reset_index(drop=True)
        y = ft.y[list(config.targets)].reset_index(drop=True)
        sites = np.asarray(ft.sites).astype(str)
        dates = np.asarray(ft.dates)
        names = list(getattr(ft, "feature_names", X.columns))
        source = "fluxcore.features"
    codes, uniques = pd.factorize(sites)
    return {"X": X, "y": y, "sites": sites, "dates": dates, "feature_names": list(names),
            "site_codes": codes, "site_uniques": np.asarray(uniques, dtype=str), "source": source}


def _rows_of(payload: dict, site_list) -> np.ndarray:
    uniques = payload["site_uniques"]
    idx = np.flatnonzero(np.isin(uniques, np.asarray(list(site_list), dtype=str)))
    return np.isin(payload["site_codes"], idx)


def fit_fold(payload: dict, task: FoldTask) -> tuple[list, np.ndarray]:
    """Fit the fold's learner(s) on the training-pool rows only.

    Returns ``(models, train_rows)``: one fitted learner for a multi-target learner, else one
    per target (in ``task.targets`` order), and the positions of the rows used for fitting.
    The test site's rows never reach ``fit`` (so neither its scalers, imputers, early
    stopping nor feature selection); fuzzy weights of 0 drop a site's rows.
    """
    if task.test_site in set(task.train_sites):  # guard: never train on the test site
        raise RuntimeError(f"fold {task.learner}/{task.test_site}: test site in training pool")
    if task.torch_threads and (getattr(task.template, "sequence", False) or "torch" in sys.modules):
        try:
            import torch

            torch.set_num_threads(int(task.torch_threads))
        except ImportError:
            pass
    X, y, sites, dates = payload["X"], payload["y"], payload["sites"], payload["dates"]
    train = _rows_of(payload, task.train_sites)
    sw = None
    if task.weights is not None:
        w_site = np.array([float(task.weights.get(s, 0.0)) for s in payload["site_uniques"]])
        w_row = w_site[payload["site_codes"]]
        train &= w_row > 0
        sw = w_row[train]
    if not train.any():
        raise RuntimeError(f"fold {task.learner}/{task.test_site}: no training rows")
    tr = np.flatnonzero(train)
    Xtr, ytr = X.iloc[tr], y.iloc[tr][list(task.targets)]
    kw_tr = {"sites": sites[tr], "dates": dates[tr]}
    template = task.template
    if task.torch_threads and "n_threads" in template.get_params():
        template = template.clone().set_params(n_threads=int(task.torch_threads))
    if getattr(template, "multi_target", False):
        return [template.clone().fit(Xtr, ytr, **kw_tr, sample_weight=sw)], tr
    return [template.clone().fit(Xtr, ytr[[t]], **kw_tr, sample_weight=sw) for t in task.targets], tr


def predict_fold(models: list, X: pd.DataFrame, sites: np.ndarray, dates: np.ndarray,
                 n_targets: int) -> np.ndarray:
    """Predictions ``(n_rows, n_targets)`` of the models returned by :func:`fit_fold`."""
    kw = {"sites": sites, "dates": dates}
    if len(models) == 1 and getattr(models[0], "multi_target", False):
        pred = np.asarray(models[0].predict(X, **kw), dtype=float).reshape(len(X), -1)
    else:
        pred = np.column_stack([np.asarray(m.predict(X, **kw), dtype=float).reshape(len(X), -1)[:, 0]
                                for m in models])
    if pred.shape != (len(X), n_targets):
        raise RuntimeError(f"learner returned predictions of shape {pred.shape}, expected {(len(X), n_targets)}")
    return pred


def test_rows(payload: dict, site: str) -> np.ndarray:
    """Positions of the rows of ``site`` in the feature table (increasing)."""
    code = np.flatnonzero(payload["site_uniques"] == site)
    return np.flatnonzero(payload["site_codes"] == code[0]) if code.size else np.zeros(0, int)


def fold_frame(payload: dict, site: str, learner: str, targets, rows: np.ndarray,
               pred: np.ndarray) -> pd.DataFrame:
    """Long predictions ``SITE_ID, DATE, learner, target, observed, predicted`` of one fold."""
    k = len(targets)
    obs = payload["y"].iloc[rows][list(targets)].to_numpy(dtype=float)
    out = pd.DataFrame({
        "SITE_ID": np.full(len(rows) * k, site, dtype=object).astype(str),
        "DATE": np.tile(payload["dates"][rows], k),
        "learner": learner,
        "target": np.repeat(np.asarray(list(targets), dtype=object), len(rows)).astype(str),
        "observed": obs.T.ravel(),
        "predicted": np.asarray(pred, dtype=float).T.ravel(),
    })
    return out[PREDICTION_COLUMNS]


def compute_fold(payload: dict, task: FoldTask) -> tuple[pd.DataFrame, dict]:
    """Train on the pool rows and predict the test site (runs in a worker).

    Returns
    -------
    (pandas.DataFrame, dict)
        Long predictions ``SITE_ID, DATE, learner, target, observed, predicted`` for the
        test site, and fold info (``seconds``, ``n_train_rows``, ``n_train_sites``,
        ``val_sites``: early-stopping validation sites when the learner records them).
    """
    t0 = time.perf_counter()
    models, tr = fit_fold(payload, task)
    X, sites, dates = payload["X"], payload["sites"], payload["dates"]
    te = test_rows(payload, task.test_site)
    k = len(task.targets)
    pred = predict_fold(models, X.iloc[te], sites[te], dates[te], k)
    out = fold_frame(payload, task.test_site, task.learner, task.targets, te, pred)
    val = set()
    for m in models:
        val |= {str(s) for s in (getattr(m, "val_sites_", None) if getattr(m, "val_sites_", None) is not None else [])}
    info = {"seconds": time.perf_counter() - t0, "n_train_rows": int(len(tr)),
            "n_train_sites": len(task.train_sites), "val_sites": sorted(val)}
    return out, info


def run_fast_batches(store: RunStore, rc: RunConfig, payload: dict, templates: dict,
                     folds: list, wanted: list[str], report: ProgressFn, cancelled: Callable[[], bool],
                     jobs: int = 1) -> int:
    """Compute the pending folds of every learner with a fast strategy, one batch per learner.

    Each batch claims the learner's pending folds in the store (folds claimed by another live
    process are left to it), computes them together with :func:`fluxcore.fastloso.run_fast`
    and stores every fold like a per-fold result. An interrupted batch loses only its own
    folds. A batch is the only work in flight, so tree learners use every core.
    Returns the number of folds computed.
    """
    from .fastloso import DESCRIPTIONS, fast_kind, run_fast

    by_id = {fold_id(lrn, s): (lrn, s, pool) for lrn, s, pool in folds}
    total = len(wanted)
    n_done = 0
    for lrn in rc.learners:
        template, weight_fn = templates[lrn]
        kind = fast_kind(template, weighted=weight_fn is not None)
        if kind is None:
            continue
        finished = store.finished_folds()
        fids = [f for f in wanted if by_id[f][0] == lrn and f not in finished]
        claimed, _ = store.claim(fids, limit=len(fids)) if fids else ([], 0)
        if not claimed:
            continue
        pools = {by_id[f][1]: list(by_id[f][2]) for f in claimed}
        weights = None
        if weight_fn is not None:
            weights = {s: make_task(rc, templates, lrn, s, pool).weights for s, pool in pools.items()}
        base = len(store.finished_folds() & set(wanted))
        n_batch = len(claimed)
        t0 = time.perf_counter()

        def progress(frac: float, _lrn=lrn, _kind=kind, _n=n_batch, _base=base, _t0=t0) -> None:
            if cancelled():
                raise RunCancelled(f"run {store.path.name} cancelled; re-run to resume")
            elapsed = time.perf_counter() - _t0
            eta = elapsed / frac * (1 - frac) if frac > 0 else None
            report(min(total, _base + int(frac * _n)), total, eta,
                   f"{_lrn}: {DESCRIPTIONS[_kind]} ({frac:.0%} of {_n} folds)")

        written: set[str] = set()
        fold_info: dict = {}
        try:
            preds = run_fast(kind, template, payload["X"], payload["y"][list(rc.targets)],
                             payload["sites"], payload["dates"], pools, site_weights=weights,
                             options=rc.strategy_options.get(kind),
                             n_jobs=max(jobs, os.cpu_count() or 1), n_processes=jobs, progress=progress,
                             info=fold_info)
            seconds = time.perf_counter() - t0
            for fid in claimed:
                _, site, pool = by_id[fid]
                df = fold_frame(payload, site, lrn, rc.targets, test_rows(payload, site), preds[site])
                store.write_fold(lrn, site, df)
                store.finish_fold(fid, seconds / len(claimed),
                                  {"strategy": kind, "batch_folds": len(claimed),
                                   "batch_seconds": round(seconds, 3), "n_train_sites": len(pool),
                                   "val_sites": [], **fold_info.get(site, {})})
                written.add(fid)
        finally:
            rest = [f for f in claimed if f not in written]
            if rest:
                store.unclaim(rest)
        n_done += len(claimed)
        report(len(store.finished_folds() & set(wanted)), total, None, f"{lrn}: {len(claimed)} folds done")
    return n_done


# ---------------------------------------------------------------------- learners
def resolve_learners(config: RunConfig, dataset) -> dict[str, tuple[Any, Callable | None]]:
    """``{name: (unfitted learner, weight_fn or None)}`` for every learner of the config."""
    from .config import check_learner_params
    from .learners import available_learners

    registry = set(available_learners())
    out = {}
    for name in config.learners:
        params = dict(config.params.get(name, {}))
        learner = check_learner_params(name, params)
        if name in registry:
            out[name] = (learner, None)
            continue
        try:
            from .fuzzy import make_variant
        except ImportError:
            raise ConfigError(f"unknown learner {name!r}; available: {', '.join(sorted(registry))}") from None
        v = make_variant(name, dataset, params, random_state=config.seed)
        out[name] = (v.learner, v.weight_fn)
    return out


def make_task(config: RunConfig, learners: dict, learner: str, test_site: str, pool: list[str],
              torch_threads: int | None = None) -> FoldTask:
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
                    torch_threads=torch_threads)


# --------------------------------------------------------------------- the runner
def _as_config(config) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return RunConfig.from_dict(config)
    if isinstance(config, (str, Path)):
        return RunConfig.from_file(config)
    raise ConfigError(f"config must be a RunConfig, a dict or a file path, got {type(config).__name__}")


def load_config_dataset(config: RunConfig):
    """Load ``config.data`` with ``fluxcore.sources.load_dataset`` (and ``config.qc``)."""
    from .sources import load_dataset

    return load_dataset(config.data, qc=None if config.qc is None else dict(config.qc))


def prepare_run(config, *, dataset=None, runs_dir="runs"):
    """Resolve the config and key the run without computing anything.

    Returns ``(resolved_config, dataset, run_dir)``; ``run_dir`` may not exist yet. Used by
    :func:`run_loso` and by front ends that want to know whether a run is already stored.
    """
    cfg = _as_config(config)
    if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
        raise DataError(runs_dir, "is a file, not a folder for run folders (give another --runs-dir)")
    if dataset is None:
        dataset = load_config_dataset(cfg)
    rc = cfg.resolved(dataset)
    from .provenance import code_version

    key = run_key(dataset.fingerprint(), rc.to_dict(), code_version())
    return rc, dataset, Path(runs_dir) / key


def run_loso(config, *, dataset=None, runs_dir: str | Path = "runs", jobs: int = 1,
             scheduler: str | None = None, progress: ProgressFn | None = None,
             cancel=None, poll_seconds: float = 0.5) -> Path:
    """Run (or resume, or fetch) a leave-one-site-out experiment.

    Parameters
    ----------
    config : RunConfig or dict or path
        What to compute (see :class:`fluxcore.config.RunConfig`).
    dataset : FluxDataset, optional
        The data; default ``fluxcore.sources.load_dataset(config.data)``.
    runs_dir : path
        Folder holding run folders.
    jobs : int
        Folds run in parallel in ``jobs`` local processes (or Dask workers for
        ``scheduler="local"``); the fast strategies use ``jobs`` (at least the CPU count)
        threads for ``rf``/``svm`` and ``jobs`` spawned processes for the ``lstm`` group models.
        With ``jobs > 1`` a calling script needs an ``if __name__ == "__main__":`` guard.
    scheduler : str, optional
        ``"local"`` (a LocalCluster on 127.0.0.1) or a Dask scheduler address ``tcp://H:P``.
    progress : callable, optional
        ``progress(done, total, eta_seconds, message)`` after each fold (done counts folds
        stored by any process, including those from earlier sessions).
    cancel : threading.Event or callable, optional
        Checked between folds; when set, the run stops (manifest status ``cancelled``,
        finished folds kept) and :class:`RunCancelled` is raised.

    Returns
    -------
    pathlib.Path
        The run folder (status ``done``).
    """
    from .metrics import site_metrics, zone_summary
    from .parallel import as_cancel_check, check_scheduler, make_executor
    from .provenance import environment

    jobs = max(1, int(jobs or 1))
    check_scheduler(scheduler)  # before any work, even when the run is already stored
    cancelled = as_cancel_check(cancel)
    rc, dataset, run_dir = prepare_run(config, dataset=dataset, runs_dir=runs_dir)
    store = RunStore(run_dir)
    folds, skipped = plan_folds(rc, dataset)
    total = len(folds)
    report = progress or (lambda *a: None)

    m = store.read_manifest()
    if m.get("status") == "done" and (run_dir / "predictions.parquet").is_file():
        report(total, total, 0.0, f"stored run {run_dir.name}")
        return run_dir

    tests = test_sites(rc, dataset)
    env = environment()
    manifest0 = {
        "key": run_dir.name, "status": "running",
        "data": {"source": str(dataset.source or rc.data), "name": dataset.name,
                 "fingerprint": dataset.fingerprint(),
                 "synthetic": bool(dataset.synthetic), "n_sites": dataset.n_sites,
                 "n_site_days": dataset.n_site_days},
        "code_version": env["code_version"], "git_commit": env["git_commit"],
        "packages": env["packages"], "platform": env["platform"],
        "n_test_sites": len(tests), "n_folds": total, "folds_done": 0, "skipped": skipped,
        "zones": {s: dataset.zone_of(s) for s in tests},
        "fold_seconds": {}, "fold_info": {}, "sessions": [], "error": None, "finished": None,
    }
    store.initialise(rc.to_dict(), manifest0)
    store.acquire_owner()
    with store.lock():  # a resumed failed / cancelled run is running again
        mm = store.read_manifest()
        if mm.get("status") != "done":
            mm["status"], mm["error"] = "running", None
            store.write_manifest(mm)
    session = {"started": now_iso(), "pid": os.getpid(), "host": socket.gethostname(),
               "jobs": jobs, "scheduler": scheduler, "folds_computed": 0}
    t_start = time.perf_counter()
    executor = None
    in_flight: dict = {}
    status = "failed"
    try:
        wanted = [fold_id(lrn, s) for lrn, s, _ in folds]
        by_id = {fold_id(lrn, s): (lrn, s, pool) for lrn, s, pool in folds}
        done_ids = store.finished_folds() & set(wanted)
        report(len(done_ids), total, None, "starting" if not done_ids else f"resuming: {len(done_ids)} folds stored")
        payload = None
        templates: dict = {}
        n_session = 0
        if rc.strategy == "fast" and len(done_ids) < total:
            payload = build_feature_table(dataset, rc)
            templates = resolve_learners(rc, dataset)
            n_session += run_fast_batches(store, rc, payload, templates, folds, wanted, report,
                                          cancelled, jobs=jobs)
            session["folds_computed"] = n_session
        while True:
            if cancelled():
                raise RunCancelled(f"run {run_dir.name} cancelled; re-run to resume")
            capacity = 1 if executor is None else executor.capacity
            free = capacity - len(in_flight)
            claimed, busy = store.claim(wanted, limit=free) if free > 0 else ([], 0)
            if claimed and executor is None:
                if payload is None:
                    payload = build_feature_table(dataset, rc)
                    templates = resolve_learners(rc, dataset)
                executor = make_executor(payload, jobs=jobs, scheduler=scheduler)
                session["executor"] = executor.info
                if executor.capacity > 1:  # claim more now that the capacity is known
                    more, busy = store.claim(wanted, limit=executor.capacity - len(claimed))
                    claimed += more
            for fid in claimed:
                lrn, site, pool = by_id[fid]
                task = make_task(rc, templates, lrn, site, pool,
                                 torch_threads=1 if (jobs > 1 or scheduler) else None)
                in_flight[executor.submit(task)] = fid
            if not in_flight:
                done_ids = store.finished_folds() & set(wanted)
                if len(done_ids) == total:
                    break
                if busy:  # another live process computes the remaining folds
                    report(len(done_ids), total, None, f"waiting: {busy} fold(s) being computed by another process")
                    time.sleep(poll_seconds)
                    continue
                time.sleep(0.05)  # stale claims were dropped: claim again
                continue
            finished, _ = executor.wait(list(in_flight), timeout=poll_seconds)
            for fut in finished:
                fid = in_flight.pop(fut)
                df, info = executor.result(fut)
                lrn, site, _ = by_id[fid]
                store.write_fold(lrn, site, df)
                store.finish_fold(fid, info["seconds"], {k: v for k, v in info.items() if k != "seconds"})
                n_session += 1
                session["folds_computed"] = n_session
                n_done = len(store.finished_folds() & set(wanted))
                elapsed = time.perf_counter() - t_start
                eta = elapsed / n_session * (total - n_done) if n_session else None
                report(n_done, total, eta, f"{lrn} {site}")
        _finalise(store, rc, dataset, site_metrics, zone_summary)
        status = "done"
    except (RunCancelled, KeyboardInterrupt):
        status = "cancelled"
        raise
    except BaseException as exc:
        status = "failed"
        session["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if executor is not None:
            try:
                executor.cancel(list(in_flight))
                executor.close()
            except Exception:  # noqa: BLE001 - closing must not hide the real error
                pass
        if in_flight:
            store.unclaim(list(in_flight.values()))
        session["ended"] = now_iso()
        session["seconds"] = round(time.perf_counter() - t_start, 3)
        session["status"] = status
        with store.lock():
            mm = store.read_manifest()
            mm.setdefault("sessions", []).append(session)
            mm["total_seconds"] = round(sum(float(s.get("seconds", 0)) for s in mm["sessions"]), 3)
            mm["compute_seconds"] = round(sum(mm.get("fold_seconds", {}).values()), 3)
            if mm.get("status") != "done":
                mm["status"] = status if status != "done" else "done"
                if status == "failed":
                    mm["error"] = session.get("error")
                elif status == "cancelled":
                    mm["error"] = None
            store.write_manifest(mm)
        store.release_owner()
    report(total, total, 0.0, f"done {run_dir.name}")
    return run_dir


def _finalise(store: RunStore, rc: RunConfig, dataset, site_metrics, zone_summary) -> None:
    """Assemble predictions / metrics / summaries once every fold is stored (under the lock)."""
    with store.lock():
        m = store.read_manifest()
        if m.get("status") == "done" and (store.path / "predictions.parquet").is_file():
            return
        preds = store.read_folds()
        preds = preds.sort_values(["learner", "target", "SITE_ID", "DATE"], kind="stable").reset_index(drop=True)
        zones = m.get("zones", {})
        metrics = site_metrics(preds, zones)
        zs = zone_summary(metrics)
        atomic_write_parquet(store.path / "predictions.parquet", preds)
        atomic_write_parquet(store.path / "metrics.parquet", metrics)
        atomic_write_bytes(store.path / "zone_summary.csv", zs.to_csv(index=False).encode())
        m["status"] = "done"
        m["finished"] = now_iso()
        m["error"] = None
        m["folds_done"] = len(store.finished_folds())
        m["features"] = {"source": _feature_source()}
        atomic_write_bytes(store.path / "summary.md", summary_markdown(rc, m, metrics, zs, dataset).encode())
        store.write_manifest(m)


def _feature_source() -> str:
    try:
        import fluxcore.features  # noqa: F401
    except ImportError:
        return "basic (fluxcore.features absent)"
    return "fluxcore.features"


def summary_markdown(rc: RunConfig, manifest: dict, metrics: pd.DataFrame, zs: pd.DataFrame,
                     dataset=None) -> str:
    """Readable Markdown summary of a finished run."""
    from .metrics import ZONE_VAR_DDOF, table3

    data = manifest.get("data", {})
    lines = [f"# Leave-one-site-out run `{manifest.get('key')}`", ""]
    if data.get("synthetic"):
        lines += ["**SYNTHETIC demo data: these numbers describe a generated world, not real towers.**", ""]
    lines += [
        f"* data: {data.get('name')} ({data.get('source')}), fingerprint `{data.get('fingerprint')}`",
        f"* learners: {', '.join(rc.learners)}; targets: {', '.join(rc.targets)}; pool: {rc.pool}; seed: {rc.seed}",
        f"* test sites: {manifest.get('n_test_sites')}; folds: {manifest.get('n_folds')}"
        + (f"; skipped: {len(manifest.get('skipped', []))}" if manifest.get("skipped") else ""),
        f"* code: {manifest.get('code_version')} (git {manifest.get('git_commit')})",
        f"* finished: {manifest.get('finished')}; compute time {sum(manifest.get('fold_seconds', {}).values()):.1f} s",
        "",
        "## Skill per site (median / mean over test sites)",
        "",
        "R² = 1 - SSE/SST (can be negative); r² = squared Pearson correlation. RMSE in gC m-2 d-1.",
        "",
        "| learner | target | sites | median R² | mean R² | median r² | mean r² | mean RMSE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (lrn, tgt), g in metrics.groupby(["learner", "target"], sort=False, observed=True):
        lines.append(f"| {lrn} | {tgt} | {g['R2'].notna().sum()} | {g['R2'].median():.3f} | {g['R2'].mean():.3f} | "
                     f"{g['r2'].median():.3f} | {g['r2'].mean():.3f} | {g['RMSE'].mean():.3f} |")
    for tgt in rc.targets:
        t3 = table3(zs, tgt)
        if t3.empty:
            continue
        lrns = list(dict.fromkeys(zs.loc[zs["target"] == tgt, "learner"]))
        lines += ["", f"## {tgt}: RMSE by aridity zone (mean / variance over sites, ddof={ZONE_VAR_DDOF})", "",
                  "| zone | " + " | ".join(lrns) + " |", "|---|" + "---|" * len(lrns)]
        for zone in t3.index:
            cells = []
            for lrn in lrns:
                mean = t3.get((lrn, "rmse_mean"), pd.Series(dtype=float)).get(zone, float("nan"))
                var = t3.get((lrn, "rmse_var"), pd.Series(dtype=float)).get(zone, float("nan"))
                cells.append(f"{mean:.3f} / {var:.3f}")
            lines.append(f"| {zone} | " + " | ".join(cells) + " |")
    if manifest.get("skipped"):
        lines += ["", "## Skipped folds", ""] + [f"* {s['fold']}: {s['reason']}" for s in manifest["skipped"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ progress
def _fmt_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    mnt, sec = divmod(rem, 60)
    return f"{h}:{mnt:02d}:{sec:02d}" if h else f"{mnt:02d}:{sec:02d}"


class TextProgress:
    """Progress callback drawing ``[#####.....] 12/48 ETA 01:05 message`` on a stream.

    On a terminal the bar is redrawn in place with ``\\r``; otherwise (a log file, CI) one
    plain line is written whenever the number of finished folds changes.
    """

    def __init__(self, stream=None, width: int = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = None

    def __call__(self, done: int, total: int, eta: float | None, message: str) -> None:
        frac = done / total if total else 1.0
        fill = int(round(self.width * frac))
        bar = "#" * fill + "." * (self.width - fill)
        text = f"[{bar}] {done}/{total} ETA {_fmt_seconds(eta)} {message}"
        if self.tty:
            self.stream.write("\r" + text[:120].ljust(120))
            if total and done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif (done, total) != self._last:
            self.stream.write(f"{done}/{total} folds, ETA {_fmt_seconds(eta)}: {message}\n")
            self.stream.flush()
        self._last = (done, total)


# ----------------------------------------------------------------------------- CLI
def _parse_param(text: str) -> tuple[str, str, Any]:
    import yaml

    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--param {text!r}: use LEARNER.NAME=VALUE, e.g. lstm.max_epochs=5")
    lhs, value = text.split("=", 1)
    learner, name = lhs.split(".", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return learner.strip(), name.strip(), parsed


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """RunConfig from ``--config`` (if any) overridden by the explicit command-line options."""
    d = RunConfig.from_file(args.config).to_dict() if args.config else {}
    for key in ("data", "learners", "targets", "sites", "zones", "pool", "seed", "strategy"):
        v = getattr(args, key, None)
        if v is not None:
            d[key] = v
    if args.param:
        params = d.setdefault("params", {}) or {}
        for text in args.param:
            learner, name, value = _parse_param(text)
            params.setdefault(learner, {})[name] = value
        d["params"] = params
    d.setdefault("data", "demo")
    return RunConfig.from_dict(d, source=args.config or "command line")


def _cmd_loso(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    progress = None if args.quiet else TextProgress(sys.stderr)
    run_dir = run_loso(cfg, runs_dir=args.runs_dir, jobs=args.jobs, scheduler=args.scheduler,
                       progress=progress)
    res = load_run(run_dir)
    if not args.quiet:
        met = res.metrics
        for lrn, tgt in [(lrn, t) for lrn in res.learners for t in res.targets]:
            d = met[(met["learner"] == lrn) & (met["target"] == tgt)]
            print(f"{lrn:>12s} {tgt:<4s} sites {d['R2'].notna().sum():4d}  median R2 {d['R2'].median():7.3f}  "
                  f"median r2 {d['r2'].median():6.3f}  mean RMSE {d['RMSE'].mean():6.3f}")
    print(run_dir)
    return 0


def _cmd_runs(args: argparse.Namespace) -> int:
    if args.delete:
        target = Path(args.runs_dir) / args.delete
        delete_run(target)
        print(f"deleted {target}")
        return 0
    df = list_runs(args.runs_dir)
    if args.json:
        print(df.to_json(orient="records", indent=2))
    elif df.empty:
        print(f"no runs in {args.runs_dir}")
    else:
        cols = ["key", "created", "status", "data", "learners", "targets", "n_sites", "folds_done", "n_folds"]
        print(df[cols].to_string(index=False))
    return 0


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse shows the message as a usage error)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return v


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_cli(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore loso`` and ``fluxcore runs``."""
    p = sub.add_parser("loso", help="leave-one-site-out cross-validation (prints the run folder last)")
    p.add_argument("--config", default=None, help="YAML/TOML/JSON run config; options below override it")
    p.add_argument("--data", default=None, help="'demo', a folder, or a tidy CSV/Parquet file (default demo)")
    p.add_argument("--learners", type=_csv, default=None, help="comma list (default lstm,rf,svm,mlr); fuzzy variants e.g. lstm_fuzzy")
    p.add_argument("--targets", type=_csv, default=None, help="comma list (default GPP,ER)")
    p.add_argument("--sites", type=_csv, default=None, help="test site ids (default all)")
    p.add_argument("--zones", type=_csv, default=None, help="test-site aridity zones: arid,semi-arid,semi-humid,humid")
    p.add_argument("--pool", choices=["all", "zone"], default=None, help="training pool (default all)")
    p.add_argument("--strategy", choices=["fast", "per-fold"], default=None,
                   help="fast: all folds of mlr/rf/svm/lstm at once without leakage (default); "
                        "per-fold: one fresh model per fold")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--param", action="append", default=[], metavar="LEARNER.NAME=VALUE",
                   help="hyperparameter, repeatable: --param lstm.max_epochs=5")
    p.add_argument("--jobs", type=_positive_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--scheduler", default=None, help="'local' (Dask LocalCluster) or tcp://HOST:PORT")
    p.add_argument("--runs-dir", default="runs", help="folder of run folders (default ./runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no skill table")
    p.set_defaults(func=_cmd_loso)

    r = sub.add_parser("runs", help="list stored runs (or delete one)")
    r.add_argument("--runs-dir", default="runs")
    r.add_argument("--delete", default=None, metavar="KEY", help="delete the run folder KEY")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_runs)
