"""Background runs for interactive front ends (the Streamlit dashboard).

A :class:`JobManager` runs :func:`fluxcore.runner.run_loso` in worker threads so that the
page that started a run never blocks: the page polls :meth:`JobManager.get` and shows
``done / total`` folds and the estimated time left; a run can be cancelled (the runner gets a
``threading.Event``). One manager is shared by all browser sessions of a server process
(``st.cache_resource``). Runs are deduplicated by key: the same configuration on the same
data submitted twice (by one session or two) is computed once and both callers get the same
:class:`Job`. Across processes the run store's lock does the same.

Concurrency is limited by ``max_running`` (default 1: LOSO training is CPU-bound; further
submissions wait in a queue).

A failed run keeps its error message (``Job.error``; the full traceback in
``Job.traceback``); it never raises into the page.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runner import run_loso

#: Job states.
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)


@dataclass
class Job:
    """One background run (mutable; read it through :meth:`snapshot`)."""

    key: str
    config: Any
    status: str = QUEUED
    done: int = 0
    total: int = 0
    eta_seconds: float | None = None
    message: str = "waiting for a free worker"
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    run_dir: Path | None = None
    error: str | None = None
    traceback: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def fraction(self) -> float:
        """Fraction of folds done in [0, 1]."""
        return 0.0 if not self.total else min(1.0, self.done / self.total)

    @property
    def elapsed(self) -> float:
        """Seconds since the job started (0 while queued)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def snapshot(self) -> dict:
        """Plain-dict copy of the state (safe to render)."""
        return {
            "key": self.key, "status": self.status, "done": self.done, "total": self.total,
            "fraction": self.fraction, "eta_seconds": self.eta_seconds, "message": self.message,
            "elapsed": self.elapsed, "run_dir": None if self.run_dir is None else str(self.run_dir),
            "error": self.error,
        }


def _config_dict(config: Any) -> dict:
    if hasattr(config, "to_dict"):
        return config.to_dict()
    if isinstance(config, dict):
        return dict(config)
    return dict(vars(config))


def run_key(config: Any, dataset: Any = None) -> str:
    """Deduplication key of a job: SHA-256 of the configuration and the data fingerprint.

    Cheap on purpose (no config resolution): two submissions with the same configuration on
    the same data share a key. The run store's own key (the run folder name, computed by
    :func:`fluxcore.runner.prepare_run` from the *resolved* configuration) is what deduplicates
    across processes; the job's ``run_dir`` holds it once the run has started.
    """
    h = hashlib.sha256(json.dumps(_config_dict(config), sort_keys=True, default=str).encode())
    if dataset is not None and hasattr(dataset, "fingerprint"):
        h.update(str(dataset.fingerprint()).encode())
    return h.hexdigest()[:16]


def _default_runner() -> Callable:
    return run_loso


def _call_runner(runner: Callable, config, dataset, runs_dir, progress, cancel):
    """Call ``runner`` with the keyword arguments it accepts."""
    try:
        params = inspect.signature(runner).parameters
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        params, has_var_kw = {}, True
    kw = {"dataset": dataset, "runs_dir": runs_dir, "progress": progress, "cancel": cancel}
    kw = {k: v for k, v in kw.items() if has_var_kw or k in params}
    return runner(config, **kw)


class JobManager:
    """Runs LOSO jobs in background threads, deduplicated by key.

    Parameters
    ----------
    runs_dir : str or Path
        Run store folder handed to the runner.
    runner : callable, optional
        ``runner(config, *, dataset, runs_dir, progress, cancel) -> Path`` (default
        :func:`fluxcore.runner.run_loso`; only the keywords it accepts are passed).
    max_running : int
        Jobs running at the same time; others wait.
    """

    def __init__(self, runs_dir: str | Path = "runs", runner: Callable | None = None, max_running: int = 1):
        self.runs_dir = Path(runs_dir)
        self._runner = runner
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max(1, int(max_running)))
        self._jobs: dict[str, Job] = {}

    # ------------------------------------------------------------------ API
    def submit(self, config: Any, dataset: Any = None, key: str | None = None,
               run_dir: str | Path | None = None) -> Job:
        """Start a run in the background, or return the job already running/done for it.

        A job that failed or was cancelled is started again. ``run_dir`` (optional) is the run
        folder the runner will use, when the caller knows it already (shown while running).
        """
        key = key or run_key(config, dataset)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in (QUEUED, RUNNING, DONE):
                return job
            job = Job(key=key, config=config, run_dir=None if run_dir is None else Path(run_dir))
            self._jobs[key] = job
            job.thread = threading.Thread(target=self._work, args=(job, dataset), name=f"fluxcore-run-{key}",
                                          daemon=True)
            job.thread.start()
        return job

    def get(self, key: str) -> Job | None:
        """The job with this key (None if unknown)."""
        with self._lock:
            return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """All jobs of this process, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.submitted, reverse=True)

    def active(self) -> list[Job]:
        """Jobs queued or running."""
        return [j for j in self.jobs() if j.status in ACTIVE]

    def cancel(self, key: str) -> bool:
        """Ask a queued or running job to stop; True if it was active."""
        job = self.get(key)
        if job is None or job.status not in ACTIVE:
            return False
        job.cancel_event.set()
        job.message = "cancelling…"
        return True

    def wait(self, key: str, timeout: float | None = None) -> Job | None:
        """Block until the job ends (for tests and scripts; pages poll instead)."""
        job = self.get(key)
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return job

    # ------------------------------------------------------------ internals
    def _work(self, job: Job, dataset: Any) -> None:
        with self._slots:
            if job.cancel_event.is_set():
                job.status, job.message, job.finished = CANCELLED, "cancelled before it started", time.time()
                return
            job.status, job.started, job.message = RUNNING, time.time(), "preparing data and features"

            def progress(done: int, total: int, eta_seconds: float | None = None, message: str = "") -> None:
                job.done, job.total, job.eta_seconds = int(done), int(total), eta_seconds
                if message:
                    job.message = str(message)

            try:
                runner = self._runner or _default_runner()
                out = _call_runner(runner, job.config, dataset, self.runs_dir, progress, job.cancel_event)
                job.run_dir = None if out is None else Path(out)
                if job.cancel_event.is_set():
                    job.status, job.message = CANCELLED, "cancelled"
                else:
                    job.status, job.message = DONE, "finished"
                    if job.total:
                        job.done = job.total
            except BaseException as exc:  # noqa: BLE001 - shown on the page, never raised into it
                if job.cancel_event.is_set():
                    job.status, job.message = CANCELLED, "cancelled"
                else:
                    from .errors import FluxcoreError

                    job.status = FAILED
                    job.error = str(exc) if isinstance(exc, FluxcoreError) else f"{type(exc).__name__}: {exc}"
                    job.traceback = traceback.format_exc()
                    job.message = "failed"
            finally:
                job.finished = time.time()
                job.eta_seconds = 0.0 if job.status == DONE else None


def format_seconds(s: float | None) -> str:
    """``"1 min 05 s"`` style duration; ``"–"`` when unknown."""
    if s is None or s != s or s < 0:
        return "–"
    s = int(round(s))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"
