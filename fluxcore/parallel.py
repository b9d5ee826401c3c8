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
* :class:`DaskSession`: the run's connection to the cluster (one per run, opened by the
  runner, closed at its end). The per-fold :class:`DaskExecutor` and the fast strategies (as
  their task mapper, ``StrategyContext.mapper``) share it, so a run starts one LocalCluster
  at most. Fast-strategy tasks (group models, trees) get the strategy's payload once per
  worker and one BLAS / torch thread each; their results come back in task order, so the
  predictions equal those of local threads or processes.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import sys
from collections.abc import Callable
from typing import Any

from .errors import ConfigError
from .strategies.base import run_ordered

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


_WORKER_THREADS: int | None = None


def _dask_call(fn: Callable[[Any, Any], Any], payload, task, threads: int):
    """One fast-strategy task on a Dask worker, with ``threads`` BLAS / OpenMP / torch threads."""
    global _WORKER_THREADS
    if _WORKER_THREADS != threads:  # once per worker process (tasks of a run share the setting)
        _set_threads(threads)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
        _WORKER_THREADS = threads
    return fn(payload, task)


def check_scheduler(scheduler: str | None) -> None:
    """Raise :class:`ConfigError` unless ``scheduler`` is None, ``"local"`` or a Dask address."""
    if scheduler is None or scheduler == "local":
        return
    if not isinstance(scheduler, str) or not scheduler.startswith(
            ("tcp://", "tls://", "inproc://", "ucx://", "ws://", "wss://")):
        raise ConfigError(f"scheduler {scheduler!r}: give 'local' or an address like tcp://HOST:PORT")


class DaskSession:
    """A connection to a Dask cluster for one run: per-fold tasks and fast-strategy tasks.

    ``scheduler="local"`` starts a :class:`distributed.LocalCluster` on 127.0.0.1 with ``jobs``
    worker processes of one thread each (no dashboard; ``MALLOC_TRIM_THRESHOLD_`` unset in
    the workers, see the module docstring); an address ``tcp://HOST:PORT`` connects to a
    running scheduler (``dask-scheduler``, a dask-jobqueue cluster's ``scheduler_address``).
    :meth:`close` closes the client and a cluster started here, never a remote one.

    It is also a task mapper for the fast strategies
    (:class:`fluxcore.strategies.base.TaskMapper`, ``StrategyContext.mapper``): :meth:`map`
    sends the payload to every worker once and hands the results back in task order, so the
    predictions equal those of local threads or processes.

    Parameters
    ----------
    scheduler : str
        ``"local"`` or a Dask scheduler address.
    jobs : int
        Workers of a local cluster (ignored for an address).
    timeout : str, optional
        How long to try to reach a scheduler address (a Dask time string such as ``"20s"``);
        default: Dask's ``distributed.comm.timeouts.connect`` (30 s unless configured, e.g.
        by the environment variable ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s``).

    Raises
    ------
    ConfigError
        dask.distributed missing, a malformed address or a scheduler that cannot be reached.
    """

    distributed = True

    def __init__(self, scheduler: str, jobs: int = 1, timeout: str | None = None):
        check_scheduler(scheduler)
        if not scheduler:
            raise ConfigError("scheduler: give 'local' or an address like tcp://HOST:PORT")
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
            timeout = timeout or dask.config.get("distributed.comm.timeouts.connect")
            try:
                self.client = distributed.Client(scheduler, timeout=timeout)
            except (OSError, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"scheduler {scheduler}: cannot reach a Dask scheduler there within {timeout} "
                    f"({type(exc).__name__}: {exc}); start one with `dask-scheduler` and workers with "
                    f"`dask-worker {scheduler}`, or give --scheduler local") from None
            address = scheduler
        workers = self.client.scheduler_info().get("workers", {})
        self.nthreads = sum(int(w.get("nthreads", 1)) for w in workers.values()) or 1
        self.address = address
        self.description = f"dask {address} ({len(workers)} workers, {self.nthreads} threads)"
        malloc = self.client.run(_malloc_env)
        self.info = {"kind": "dask", "scheduler": address, "n_workers": len(workers),
                     "nthreads": self.nthreads,
                     "malloc_trim_threshold": sorted(set(map(str, malloc.values())))}

    def slots(self, kind: str = "threads") -> int:
        """Tasks that run at the same time on the cluster (its worker threads)."""
        return self.nthreads

    def map(self, fn: Callable[[Any, Any], Any], tasks, *, payload: Any = None, kind: str = "threads",
            on_result: Callable[[int, Any], None] | None = None, window: int | None = None,
            blas_threads: int | None = None) -> list | None:
        """Compute ``fn(payload, task)`` on the cluster for every task, results in task order.

        As :meth:`fluxcore.strategies.base.LocalMapper.map`: ``payload`` reaches every worker
        once (scattered with ``broadcast=True``); ``kind`` only matters locally (every task
        runs in a worker process of its own thread); each task runs with ``blas_threads``
        (default 1) BLAS / OpenMP / torch threads. ``on_result`` may raise to stop: the tasks
        still queued are cancelled.
        """
        tasks = list(tasks)
        out: list | None = [] if on_result is None else None
        handle = on_result if on_result is not None else (lambda i, r: out.append(r))
        if not tasks:
            return out
        data = self.client.scatter([payload], broadcast=True, hash=False)[0]
        threads = int(blas_threads or 1)
        try:
            run_ordered(lambda call, task: self.client.submit(call, fn, data, task, threads, pure=False),
                        _dask_call, tasks, handle, window, cancel=self.client.cancel)
        finally:
            data.release()
        return out

    def close(self) -> None:
        """Close the client, and the cluster when this session started it."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
                self.cluster = None
            if self._popped_env is not None:
                os.environ["MALLOC_TRIM_THRESHOLD_"] = self._popped_env
                self._popped_env = None


class DaskExecutor:
    """Run folds on a Dask distributed cluster (``tcp://host:port`` or ``"local"``).

    With ``session`` the folds run on that :class:`DaskSession` (the run's, shared with the
    fast strategies; :meth:`close` leaves it open); otherwise the executor opens its own.
    """

    def __init__(self, fn: FoldFn, payload, scheduler: str, jobs: int = 1, session: DaskSession | None = None):
        self._own = session is None
        self.session = DaskSession(scheduler, jobs=jobs) if session is None else session
        self.client = self.session.client
        self._distributed = self.session._distributed
        self.capacity = max(self.session.nthreads, 1) * 2  # keep workers busy while the driver writes
        self.description = self.session.description
        self.info = dict(self.session.info)
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
        if self._own:
            self.session.close()
        else:
            self.payload.release()


def open_session(scheduler: str | None, jobs: int = 1) -> DaskSession | None:
    """The run's :class:`DaskSession` for ``scheduler`` (None without a scheduler)."""
    return DaskSession(scheduler, jobs=jobs) if scheduler else None


def make_executor(fn: FoldFn, payload, jobs: int = 1, scheduler: str | None = None,
                  session: DaskSession | None = None):
    """Pick the executor for ``jobs`` / ``scheduler`` (see module docstring).

    ``fn(payload, task)`` computes one task; it must be a module-level function (it travels to
    worker processes by reference). ``session``: the run's open :class:`DaskSession`, used
    instead of opening another connection (or cluster) for ``scheduler``.
    """
    if scheduler or session is not None:
        return DaskExecutor(fn, payload, scheduler or session.address, jobs=jobs, session=session)
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
