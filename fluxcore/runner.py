"""The leave-one-site-out runner: plan, compute (fast batches, then fold by fold), finalise.

Results go to a run folder keyed by data + config + code (:mod:`fluxcore.runstore`), which
makes identical requests free, lets an interrupted run resume and lets several processes
share one run. Folds run in local processes or on Dask (:mod:`fluxcore.parallel`); learners
with a fast strategy (:mod:`fluxcore.strategies`) are computed in one batch each
(:mod:`fluxcore.fastbatch`); a pre-training stage (``RunConfig.pretrain``,
:mod:`fluxcore.pretrain`) is set up here once per run.

Reference: Gao et al. (2025), leave-one-site-out validation of LSTM, RF, SVM and MLR.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from pathlib import Path

from .config import RunConfig
from .errors import ConfigError, DataError
from .fastbatch import ProgressFn, RunCancelled, fast_strategy_of, run_fast_batches
from .foldrun import FoldData, build_fold_data, compute_fold, make_task, resolve_learners
from .folds import plan_folds
from .parallel import as_cancel_check, check_scheduler, make_executor, open_session
from .pretrain import PretrainConfig, PretrainStage, source_targets
from .provenance import code_version, environment
from .runstore import RunStore, atomic_write_bytes, now_iso, repair_run, result_problems, run_key
from .sources import load_dataset
from .summary import summary_markdown

__all__ = ["run_loso", "prepare_run", "load_config_dataset", "RunCancelled", "ProgressFn"]


def _fold_data(dataset, rc: RunConfig) -> FoldData:
    """The run's feature table, with the pre-training source targets when the run has a stage."""
    data = build_fold_data(dataset, rc)
    if rc.pretrain:
        cfg = PretrainConfig.from_dict(rc.pretrain)
        ys = source_targets(cfg.source, dataset, list(rc.targets))
        if len(ys) != len(data.X):
            raise DataError(None, f"pretrain: {len(ys)} source rows for {len(data.X)} feature rows")
        data.pretrain = PretrainStage(cfg, ys)
    return data


def _as_config(config) -> RunConfig:
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return RunConfig.from_dict(config)
    if isinstance(config, (str, Path)):
        return RunConfig.from_file(config)
    raise ConfigError(f"config must be a RunConfig, a dict or a file path, got {type(config).__name__}")


def load_config_dataset(config: RunConfig):
    """Load ``config.data`` with ``fluxcore.sources.load_dataset`` (and ``config.qc``, ``config.sites_table``)."""
    return load_dataset(config.data, qc=None if config.qc is None else dict(config.qc),
                        sites_table=config.sites_table)


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
        ``"local"`` (a LocalCluster on 127.0.0.1 with ``jobs`` workers) or a Dask scheduler
        address ``tcp://H:P``: the fast strategies' tasks and the per-fold folds run there
        (one cluster connection per run, closed at its end), with the same predictions as
        local processes (docs/scale-out.md).
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
    jobs = max(1, int(jobs or 1))
    check_scheduler(scheduler)  # before any work, even when the run is already stored
    cancelled = as_cancel_check(cancel)
    rc, dataset, run_dir = prepare_run(config, dataset=dataset, runs_dir=runs_dir)
    store = RunStore(run_dir)
    plan = plan_folds(rc, dataset)
    total = len(plan.folds)
    report = progress or (lambda *a: None)

    if not plan.folds:
        _stop_no_fold(store, rc, _initial_manifest(run_dir, rc, dataset, plan), plan)

    m = store.read_manifest()
    if m.get("status") == "done":
        try:
            if result_problems(run_dir):
                repair_run(run_dir)  # rebuilds damaged result files from the fold files
            report(total, total, 0.0, f"stored run {run_dir.name}")
            return run_dir
        except DataError as exc:  # folds missing too: the run is 'damaged'; compute what is missing
            warnings.warn(f"{exc}; recomputing the missing folds", stacklevel=2)

    manifest0 = _initial_manifest(run_dir, rc, dataset, plan)
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
    cluster = None  # the run's Dask session (scheduler given): fast batches and folds share it
    in_flight: dict = {}
    status = "failed"
    try:
        wanted = plan.ids
        by_id = plan.by_id()
        done_ids = store.finished_folds() & set(wanted)
        report(len(done_ids), total, None, "starting" if not done_ids else f"resuming: {len(done_ids)} folds stored")
        payload = None
        templates: dict = {}
        n_session = 0
        if rc.strategy == "fast" and len(done_ids) < total:
            payload = _fold_data(dataset, rc)
            templates = resolve_learners(rc, dataset)
            if scheduler and any(fast_strategy_of(rc, templates, lrn) for lrn in rc.learners):
                cluster = open_session(scheduler, jobs=jobs)
                session["executor"] = cluster.info
            n_session += run_fast_batches(store, rc, payload, templates, plan, report,
                                          cancelled, jobs=jobs, mapper=cluster)
            session["folds_computed"] = n_session
        while True:
            if cancelled():
                raise RunCancelled(f"run {run_dir.name} cancelled; re-run to resume")
            capacity = 1 if executor is None else executor.capacity
            free = capacity - len(in_flight)
            claimed, busy = store.claim(wanted, limit=free) if free > 0 else ([], 0)
            if claimed and executor is None:
                if payload is None:
                    payload = _fold_data(dataset, rc)
                    templates = resolve_learners(rc, dataset)
                executor = make_executor(compute_fold, payload, jobs=jobs, scheduler=scheduler, session=cluster)
                session["executor"] = executor.info
                if executor.capacity > 1:  # claim more now that the capacity is known
                    more, busy = store.claim(wanted, limit=executor.capacity - len(claimed))
                    claimed += more
            for fid in claimed:
                lrn, site, pool = by_id[fid]
                task = make_task(rc, templates, lrn, site, pool,
                                 torch_threads=1 if (jobs > 1 or scheduler) else None,
                                 models=store if rc.pretrain else None)
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
        _finalise(store, rc, dataset, wanted)
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
        if cluster is not None:
            try:
                cluster.close()
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


def _initial_manifest(run_dir: Path, rc: RunConfig, dataset, plan) -> dict:
    """The manifest of a new run folder (status ``running``)."""
    env = environment()
    return {
        "key": run_dir.name, "status": "running",
        "data": {"source": str(dataset.source or rc.data), "name": dataset.name,
                 "fingerprint": dataset.fingerprint(),
                 "synthetic": bool(dataset.synthetic), "n_sites": dataset.n_sites,
                 "n_site_days": dataset.n_site_days},
        "code_version": env["code_version"], "git_commit": env["git_commit"],
        "packages": env["packages"], "platform": env["platform"],
        "n_test_sites": len(plan.tests), "n_folds": len(plan.folds), "folds_done": 0, "skipped": plan.skipped,
        "zones": {s: dataset.zone_of(s) for s in plan.tests},
        "fold_seconds": {}, "fold_info": {}, "sessions": [], "error": None, "finished": None,
    }


def _stop_no_fold(store: RunStore, rc: RunConfig, manifest0: dict, plan) -> None:
    """Every fold of the plan is skipped: mark the run folder ``failed`` with the reason and raise.

    Raises
    ------
    ConfigError
        Naming the number of skipped folds, the first reason and what to change.
    """
    reasons = list(dict.fromkeys(s["reason"] for s in plan.skipped))
    hints = [f"lower min_train_sites (now {rc.min_train_sites})"]
    hints += ["use pool 'all' (now 'zone')"] if rc.pool == "zone" else []
    reason = (f"no fold could run: all {len(plan.skipped)} fold(s) were skipped ({'; '.join(reasons[:3])}); "
              f"{' or '.join(hints)}, or choose other test sites")
    store.initialise(rc.to_dict(), manifest0)
    with store.lock():
        m = store.read_manifest()
        m.update(status="failed", error=reason, skipped=plan.skipped, n_folds=0)
        store.write_manifest(m)
    raise ConfigError(f"{reason} (run {store.path.name} marked failed)")


def _finalise(store: RunStore, rc: RunConfig, dataset, expect: list[str]) -> None:
    """Assemble predictions / metrics / summaries once every fold is stored (under the lock).

    ``expect``: the run's fold ids; a fold file found damaged now stops the run from being
    marked done with a fold missing (:class:`DataError`, the fold is recomputed on rerun).
    """
    with store.lock():
        m = store.read_manifest()
        if m.get("status") == "done" and (store.path / "predictions.parquet").is_file():
            return
        preds, metrics, zs = store.build_results(m.get("zones", {}), expect=expect)
        store.write_results(preds, metrics, zs)
        m["status"] = "done"
        m["finished"] = now_iso()
        m["error"] = None
        m["folds_done"] = len(store.finished_folds())
        m["features"] = {"source": "fluxcore.features"}
        atomic_write_bytes(store.path / "summary.md", summary_markdown(rc, m, metrics, zs, dataset).encode())
        store.write_manifest(m)


