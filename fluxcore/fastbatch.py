"""Fast batches: all pending folds of a learner computed together by its fast strategy.

The runner (:func:`fluxcore.runner.run_loso`) calls :func:`run_fast_batches` before the
per-fold loop; learners without a fast strategy (tag ``fast_strategy``) are left to that loop.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .config import RunConfig
from .errors import FluxcoreError
from .foldrun import FoldData, fold_frame, make_task
from .folds import FoldPlan
from .runstore import RunStore
from .strategies import Strategy, StrategyContext, strategy_for

__all__ = ["RunCancelled", "fast_strategy_of", "run_fast_batches", "ProgressFn"]

ProgressFn = Callable[[int, int, "float | None", str], None]


class RunCancelled(FluxcoreError):
    """Raised inside the runner when the caller asked to stop (the run can be resumed)."""


def _stage_for(data: FoldData, strategy: Strategy, learner: str, store: RunStore):
    """The run's pre-training stage for ``learner`` (bound to the tower fluxes), or None."""
    stage = data.pretrain
    if stage is None or not strategy.pretrain or not stage.applies_to(learner):
        return None
    return stage.bound(data.y, store.path / "pretrain")


class _CountingMapper:
    """A task mapper that counts the tasks it was given (recorded in the manifest)."""

    def __init__(self, inner):
        self.inner = inner
        self.distributed = inner.distributed
        self.description = inner.description
        self.n_tasks = 0

    def slots(self, kind: str = "threads") -> int:
        return self.inner.slots(kind)

    def map(self, fn, tasks, **kwargs):
        tasks = list(tasks)
        self.n_tasks += len(tasks)
        return self.inner.map(fn, tasks, **kwargs)


def fast_strategy_of(rc: RunConfig, templates: dict, learner: str) -> Strategy | None:
    """The fast strategy that computes ``learner``'s folds in this run (None: fold by fold)."""
    if rc.strategy != "fast":
        return None
    template, weight_fn = templates[learner]
    return strategy_for(template, weighted=weight_fn is not None)


def run_fast_batches(store: RunStore, rc: RunConfig, data: FoldData, templates: dict,
                     plan: FoldPlan, report: ProgressFn, cancelled: Callable[[], bool],
                     jobs: int = 1, mapper=None) -> int:
    """Compute the pending folds of every learner with a fast strategy, one batch per learner.

    Each batch claims the learner's pending folds in the store (folds claimed by another live
    process are left to it), computes them together with the learner's strategy
    (:mod:`fluxcore.strategies`) and stores every fold like a per-fold result. An interrupted
    batch loses only the unit in flight: strategies store each finished unit (a round of
    trees, a group model) in the store's ``units/`` (:class:`fluxcore.strategies.base.Checkpoint`)
    and a rerun reads them back instead of computing them, with identical predictions; the
    units are deleted once the batch's folds are stored. A batch is the only work in flight, so tree learners use every core.

    ``mapper`` (a :class:`fluxcore.parallel.DaskSession`, the run's cluster) runs the
    strategies' tasks (group models, trees) on a Dask cluster instead of local threads and
    ``jobs`` processes (:class:`fluxcore.strategies.base.LocalMapper`); the predictions are the
    same, and each fold's manifest entry names it (``executor``) with the number of tasks
    its batch sent there (``executor_tasks``; 0 for ``mlr_exact``, computed here in one pass).
    Returns the number of folds computed.
    """
    by_id = plan.by_id()
    wanted = plan.ids
    total = len(wanted)
    n_done = 0
    for lrn in rc.learners:
        strategy = fast_strategy_of(rc, templates, lrn)
        if strategy is None:
            continue
        template, weight_fn = templates[lrn]
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

        def progress(frac: float, _lrn=lrn, _s=strategy, _n=n_batch, _base=base, _t0=t0) -> None:
            if cancelled():
                raise RunCancelled(f"run {store.path.name} cancelled; re-run to resume")
            elapsed = time.perf_counter() - _t0
            eta = elapsed / frac * (1 - frac) if frac > 0 else None
            report(min(total, _base + int(frac * _n)), total, eta,
                   f"{_lrn}: {_s.description} ({frac:.0%} of {_n} folds)")

        context = StrategyContext(n_jobs=max(jobs, os.cpu_count() or 1), n_processes=jobs,
                                  progress=progress, info={}, models=store, learner_name=lrn,
                                  site_weights=weights, pretrain=_stage_for(data, strategy, lrn, store),
                                  mapper=None if mapper is None else _CountingMapper(mapper))
        written: set[str] = set()
        try:
            preds = strategy.run(template, data.X, data.y[list(rc.targets)], data.sites, data.dates, pools,
                                 rc.strategy_options.get(lrn, strategy.check_options({})), context)
            seconds = time.perf_counter() - t0
            where = ({} if mapper is None else
                     {"executor": mapper.description, "executor_tasks": context.mapper.n_tasks})
            for fid in claimed:
                _, site, pool = by_id[fid]
                df = fold_frame(data, site, lrn, rc.targets, data.test_rows(site), preds[site])
                store.write_fold(lrn, site, df)
                store.finish_fold(fid, seconds / len(claimed),
                                  {"strategy": strategy.name, "batch_folds": len(claimed),
                                   "batch_seconds": round(seconds, 3), "n_train_sites": len(pool),
                                   "val_sites": [], **where, **context.info.get(site, {})})
                written.add(fid)
            if hasattr(store, "clear_units"):
                store.clear_units(lrn)  # every fold of the batch is stored: its checkpoints are spent
        finally:
            rest = [f for f in claimed if f not in written]
            if rest:
                store.unclaim(rest)
        n_done += len(claimed)
        report(len(store.finished_folds() & set(wanted)), total, None, f"{lrn}: {len(claimed)} folds done")
    return n_done
