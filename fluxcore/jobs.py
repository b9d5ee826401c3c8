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
``Job.traceback``); it never raises into the page. A run in which every fold was skipped
(e.g. too few training sites in a zone) is a failure with the reason from its manifest, not a
success with 0 folds.

Progress is told in plain words (``"random forest: 4 of 15 sites"``) and the time left is
estimated from the measured time so far (elapsed / fraction done, the fraction weighted by the
learners' expected costs when they are known), never left at "–": before the first fold it is
the expected duration given at submission.

Runs can carry a name (:func:`write_run_name`: ``name.txt`` in the run folder, not part of the
run key).
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

from .learners import available_learners, make_learner
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
    name: str | None = None
    expected_seconds: float | None = None
    learner_seconds: dict | None = None
    warning: str | None = None

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

    @property
    def learners(self) -> list[str]:
        """Learner names of the job's configuration (in the order the runner computes them)."""
        return [str(x) for x in (_config_dict(self.config).get("learners") or [])]

    @property
    def weighted_fraction(self) -> float:
        """Fraction of the expected work done in [0, 1] (folds weighted by learner cost)."""
        return weighted_fraction(self.done, self.total, self.learners, self.learner_seconds)

    def seconds_left(self) -> float | None:
        """Estimated seconds left, from the time measured so far (None only when unknowable)."""
        if self.status not in ACTIVE:
            return 0.0 if self.status == DONE else None
        if self.started is None:
            return self.expected_seconds
        return estimate_seconds_left(self.elapsed, self.weighted_fraction, self.expected_seconds)

    def progress_text(self) -> str:
        """Plain-language progress: ``"random forest: 4 of 15 sites"`` (or the runner's phase)."""
        if self.status == QUEUED:
            return self.message
        if self.status == RUNNING and self.total and 0 < self.done < self.total:
            lrn, k, n = learner_progress(self.done, self.total, self.learners)
            if lrn is not None:
                return f"{plain_learner_name(lrn)}: {k} of {n} sites"
        if self.status == RUNNING and not self.done:
            return "preparing data and features" if self.message in ("starting", "") else self.message
        return self.message

    def snapshot(self) -> dict:
        """Plain-dict copy of the state (safe to render)."""
        return {
            "key": self.key, "status": self.status, "done": self.done, "total": self.total,
            "fraction": self.fraction, "eta_seconds": self.seconds_left(), "message": self.message,
            "progress_text": self.progress_text(), "expected_seconds": self.expected_seconds,
            "elapsed": self.elapsed, "run_dir": None if self.run_dir is None else str(self.run_dir),
            "error": self.error, "warning": self.warning, "name": self.name,
        }


#: Plain names of the learners, for progress and labels.
def plain_learner_name(name: str) -> str:
    """A learner's own one-line ``description`` (``"rf"`` -> ``"random forest"``); a variant
    ``"rf_fuzzy"`` -> ``"random forest (fuzzy)"``; the name itself when it is not registered."""
    name = str(name)
    names = set(available_learners())
    if name in names:
        return make_learner(name).description or name
    base, _, rest = name.partition("_")
    if base in names:
        return f"{make_learner(base).description or base} ({rest.replace('_', ' ')})"
    return name


def learner_progress(done: int, total: int, learners: list[str]) -> tuple[str | None, int, int]:
    """Which learner is being computed after ``done`` of ``total`` folds, and how far it is.

    The runner computes the learners one after the other in the configuration's order, each
    with the same number of folds (``total / len(learners)``).

    Returns
    -------
    (str or None, int, int)
        Learner name, its folds done, its folds in all (None when unknown).
    """
    if not learners or total <= 0 or total % len(learners):
        return None, 0, 0
    n = total // len(learners)
    i = min(len(learners) - 1, max(0, int(done)) // n)
    return learners[i], min(n, int(done) - i * n), n


def weighted_fraction(done: int, total: int, learners: list[str], seconds: dict | None = None) -> float:
    """Fraction of the work done when learner ``l``'s folds cost ``seconds[l]`` each [0-1].

    Without costs (or when the folds cannot be split by learner) every fold counts the same.
    """
    if total <= 0:
        return 0.0
    f = min(1.0, max(0.0, done / total))
    if not seconds or not learners or total % len(learners):
        return f
    n = total // len(learners)
    w = [max(float(seconds.get(lrn) or 0.0), 0.0) for lrn in learners]
    if sum(w) <= 0:
        return f
    got = sum(wi * min(1.0, max(0.0, (done - i * n) / n)) for i, wi in enumerate(w))
    return min(1.0, got / sum(w))


def estimate_seconds_left(elapsed: float, fraction: float, expected: float | None = None) -> float | None:
    """Seconds left after ``elapsed`` seconds with ``fraction`` of the work done.

    The measured rate (``elapsed / fraction``) once some work is done; before that, and
    blended in over the first 20 % of the work, the ``expected`` duration. The estimate moves
    with the clock (a run that stalls sees its estimate grow, not freeze). None only when
    nothing is done and nothing is expected.

    Parameters
    ----------
    elapsed : float
        Seconds since the run started [s].
    fraction : float
        Fraction of the work done [0-1].
    expected : float, optional
        Expected duration of the whole run [s].
    """
    if fraction >= 1.0:
        return 0.0
    prior = None
    if expected is not None and expected > 0:
        prior = max(expected - elapsed, 0.1 * expected * (1.0 - fraction), 1.0)
    if fraction <= 0.0 or elapsed <= 0.0:
        return prior
    measured = elapsed * (1.0 - fraction) / fraction
    if prior is None:
        return measured
    w = min(1.0, fraction / 0.2)
    return w * measured + (1.0 - w) * prior


# ---------------------------------------------------------------------------- run names
#: File holding a run's name, in the run folder (not part of the run key).
RUN_NAME_FILE = "name.txt"
MAX_NAME_CHARS = 80


def clean_run_name(name: str | None) -> str | None:
    """A name as stored: one line, stripped, at most :data:`MAX_NAME_CHARS` characters."""
    if name is None:
        return None
    text = " ".join(str(name).split())[:MAX_NAME_CHARS]
    return text or None


def write_run_name(run_dir: str | Path, name: str | None) -> None:
    """Give the run in ``run_dir`` a name (``name.txt``; an empty name removes it)."""
    p = Path(run_dir) / RUN_NAME_FILE
    text = clean_run_name(name)
    if text is None:
        p.unlink(missing_ok=True)
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(p)


def read_run_name(run_dir: str | Path) -> str | None:
    """The run's name, or None."""
    try:
        return clean_run_name((Path(run_dir) / RUN_NAME_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def skipped_problem(manifest: dict) -> tuple[str | None, str | None]:
    """What a finished run's manifest says about skipped folds.

    Returns
    -------
    (str or None, str or None)
        ``(error, warning)``: an error when no fold was computed (every fold skipped, with the
        reason), a warning when some were skipped; None where there is nothing to say.
    """
    skipped = list(manifest.get("skipped") or [])
    n_folds = int(manifest.get("n_folds") or 0)
    if not skipped:
        if n_folds == 0 and manifest.get("status") == "done":
            return "the run has no fold to compute (no test site)", None
        return None, None
    reasons = sorted({str(x.get("reason", "")) for x in skipped if isinstance(x, dict)} - {""})
    why = "; ".join(reasons[:3]) or "no reason recorded"
    example = next((str(x.get("fold")) for x in skipped if isinstance(x, dict) and x.get("fold")), None)
    eg = f", e.g. {example}" if example else ""
    if n_folds == 0:
        return (f"no fold could be computed: all {len(skipped)} fold(s) were skipped ({why}{eg}). "
                "Choose more test sites, another zone, or the training pool 'all other sites'."), None
    return None, f"{len(skipped)} fold(s) were skipped ({why}{eg}); the results cover the other {n_folds}."


def read_manifest(run_dir: str | Path) -> dict:
    """The run's ``manifest.json`` as a dict ({} when missing or unreadable)."""
    try:
        return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


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
        #: ``runner(config, *, dataset, runs_dir, progress, cancel) -> Path`` (None: run_loso)
        self.runner = runner
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(max(1, int(max_running)))
        self._jobs: dict[str, Job] = {}

    # ------------------------------------------------------------------ API
    def submit(self, config: Any, dataset: Any = None, key: str | None = None,
               run_dir: str | Path | None = None, name: str | None = None,
               expected_seconds: float | None = None, learner_seconds: dict | None = None) -> Job:
        """Start a run in the background, or return the job already running/done for it.

        A job that failed or was cancelled is started again. ``run_dir`` (optional) is the run
        folder the runner will use, when the caller knows it already (shown while running).
        ``name`` is written beside the run (:func:`write_run_name`; a job already running or
        done gets the new name too). ``expected_seconds`` (whole run [s]) and
        ``learner_seconds`` (seconds per fold by learner [s]) make the time-left estimate
        honest from the start (see :func:`estimate_seconds_left`).
        """
        key = key or run_key(config, dataset)
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.status in (QUEUED, RUNNING, DONE):
                if clean_run_name(name) and clean_run_name(name) != job.name:
                    job.name = clean_run_name(name)
                    if job.run_dir is not None and job.run_dir.is_dir():
                        write_run_name(job.run_dir, job.name)
                return job
            job = Job(key=key, config=config, run_dir=None if run_dir is None else Path(run_dir),
                      name=clean_run_name(name), expected_seconds=expected_seconds,
                      learner_seconds=dict(learner_seconds) if learner_seconds else None)
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
                runner = self.runner or _default_runner()
                out = _call_runner(runner, job.config, dataset, self.runs_dir, progress, job.cancel_event)
                job.run_dir = None if out is None else Path(out)
                if job.run_dir is not None and job.name:
                    write_run_name(job.run_dir, job.name)
                error, job.warning = (skipped_problem(read_manifest(job.run_dir)) if job.run_dir is not None
                                      else (None, None))
                if job.cancel_event.is_set():
                    job.status, job.message = CANCELLED, "cancelled"
                elif error is not None:
                    job.status, job.error, job.message = FAILED, error, "nothing computed"
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
