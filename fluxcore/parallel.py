"""Where folds run: in this process, in local worker processes, or on a Dask cluster.

The runner (:func:`fluxcore.runner.run_loso`) hands every executor the *fold function*
(:func:`fluxcore.foldrun.compute_fold`, a picklable module-level function) and the same
*payload* (the run's feature table: ``X``, ``y``, per-row site ids and dates) once, and then
small fold tasks (learner template, test site, training sites, optional site weights).
Workers return ``fn(payload, task)``: the fold's predictions; the driver writes them into
the run store. The executors know nothing else of folds (no import of the runner).

* :class:`SerialExecutor` (``jobs=1``, no scheduler): folds run one after the other here.
* :class:`ProcessExecutor` (``jobs=N > 1``): a :class:`concurrent.futures.ProcessPoolExecutor`
  with the ``spawn`` start method (safe with torch and threads); the payload reaches each
  worker once through the pool initializer; torch uses one thread per worker.
* :class:`DaskExecutor` (``scheduler="tcp://host:port"`` or ``"local"``): folds become Dask
  futures; the payload is scattered to every worker once (``broadcast=True``).
  ``"local"`` starts a :class:`distributed.LocalCluster` on 127.0.0.1 with ``jobs`` worker
  processes of one thread each and no dashboard. Dask's nanny sets
  ``MALLOC_TRIM_THRESHOLD_=65536`` in workers by default, which makes torch training about
  twice as slow; fluxcore unsets it for the workers it starts
  (``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_ = None``) and records the
  value seen inside the workers in the run manifest (``executor.malloc_trim_threshold``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

_FN: Any = None
_PAYLOAD: Any = None
_THREADS: int | None = None

FoldFn = Callable[[Any, Any], Any]


def _set_threads(n: int | None) -> None:
    """Limit BLAS/OpenMP threads of this (worker) process to ``n`` (torch: in the fold)."""
    if not n:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


# ------------------------------------------------------------------- serial
class SerialExecutor:
    """Run folds in this process, one at a time (``submit`` computes immediately)."""

    capacity = 1
    description = "serial"

    def __init__(self, fn: FoldFn, payload):
        self.fn = fn
        self.payload = payload
        self.info: dict = {"kind": "serial"}

    def submit(self, task) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(self.fn(self.payload, task))
        except BaseException as exc:  # noqa: BLE001 - handed to the driver
            fut.set_exception(exc)
        return fut

    def wait(self, futures, timeout: float | None = None):
        done, pending = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done), list(pending)

    @staticmethod
    def result(fut):
        return fut.result()

    def cancel(self, futures) -> None:
        for f in futures:
            f.cancel()

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ processes
def _pool_init(fn: FoldFn, payload, threads: int | None) -> None:
    global _FN, _PAYLOAD, _THREADS
    _set_threads(threads)
    _FN, _PAYLOAD, _THREADS = fn, payload, threads


def _pool_task(task):
    return _FN(_PAYLOAD, task)


class ProcessExecutor(SerialExecutor):
    """Run folds in ``jobs`` local worker processes (spawn start method)."""

    def __init__(self, fn: FoldFn, payload, jobs: int, start_method: str = "spawn"):
        self.capacity = int(jobs)
        self.description = f"{jobs} local processes ({start_method})"
        self.info = {"kind": "processes", "jobs": int(jobs), "start_method": start_method}
        ctx = mp.get_context(start_method)
        self.pool = cf.ProcessPoolExecutor(max_workers=int(jobs), mp_context=ctx,
                                           initializer=_pool_init, initargs=(fn, payload, 1))

    def submit(self, task) -> cf.Future:
        return self.pool.submit(_pool_task, task)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# ----------------------------------------------------------------------- dask
def _dask_task(fn: FoldFn, payload, task):
    return fn(payload, task)


def _malloc_env() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def check_scheduler(scheduler: str | None) -> None:
    """Raise :class:`ConfigError` unless ``scheduler`` is None, ``"local"`` or a Dask address."""
    if scheduler is None or scheduler == "local":
        return
    if not isinstance(scheduler, str) or not scheduler.startswith(
            ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
        raise ConfigError(f"scheduler {scheduler!r}: give 'local' or an address like tcp://HOST:PORT")


class DaskExecutor:
    """Run folds on a Dask distributed cluster (``tcp://host:port`` or ``"local"``)."""

    def __init__(self, fn: FoldFn, payload, scheduler: str, jobs: int = 1):
        try:
            import dask
            import distributed
        except ImportError as exc:
            raise ConfigError("--scheduler needs dask.distributed: pip install 'dask[distributed]'") from exc
        self._distributed = distributed
        self.cluster = None
        self._popped_env = None
        if scheduler == "local":
            n = max(1, int(jobs))
            # MALLOC_TRIM_THRESHOLD_ must not reach the workers (slows torch ~2x); the nanny
            # copies pre-spawn-environ into os.environ, so also drop a value left there.
            self._popped_env = os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
            with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
                                  "distributed.worker.daemon": False}):
                self.cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
            address = self.cluster.scheduler_address
        else:
            check_scheduler(scheduler)
            try:
                self.client = distributed.Client(scheduler, timeout="20s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
            address = scheduler
        workers = self.client.scheduler_info().get("workers", {})
        nthreads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        self.capacity = max(nthreads, 1) * 2  # keep workers busy while the driver writes
        self.description = f"dask {address} ({len(workers)} workers, {nthreads} threads)"
        malloc = self.client.run(_malloc_env)
        self.info = {"kind": "dask", "scheduler": address, "n_workers": len(workers),
                     "nthreads": nthreads, "malloc_trim_threshold": sorted(set(map(str, malloc.values())))}
        self.fn = fn
        self.payload = self.client.scatter(payload, broadcast=True, hash=False)

    def submit(self, task):
        return self.client.submit(_dask_task, self.fn, self.payload, task, pure=False)

    def wait(self, futures, timeout: float | None = None):
        try:
            res = self._distributed.wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return [], list(futures)
        return list(res.done), list(res.not_done)

    @staticmethod
    def result(fut):
        return fut.result()

    def cancel(self, futures) -> None:
        if futures:
            self.client.cancel(list(futures))

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
            if self._popped_env is not None:
                os.environ["MALLOC_TRIM_THRESHOLD_"] = self._popped_env


def make_executor(fn: FoldFn, payload, jobs: int = 1, scheduler: str | None = None):
    """Pick the executor for ``jobs`` / ``scheduler`` (see module docstring).

    ``fn(payload, task)`` computes one task; it must be a module-level function (it travels to
    worker processes by reference).
    """
    if scheduler:
        return DaskExecutor(fn, payload, scheduler, jobs=jobs)
    if jobs is None or int(jobs) <= 1:
        return SerialExecutor(fn, payload)
    return ProcessExecutor(fn, payload, int(jobs))


def as_cancel_check(cancel) -> Callable[[], bool]:
    """Turn ``None`` / a ``threading.Event`` / a callable into a ``() -> bool`` check."""
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise ConfigError("cancel must be a threading.Event-like object or a callable")
