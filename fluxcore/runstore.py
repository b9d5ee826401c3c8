"""Run folders: content-addressed storage, resume, locking, self-repair, listing and loading.

A run lives in ``<runs_dir>/<key>/`` where ``key`` (:func:`run_key`) is a hash of the data
fingerprint, the resolved run configuration (without the ``data`` path: the fingerprint
stands for the data) and the code version (:func:`fluxcore.provenance.code_version`).
An identical request therefore finds the stored run.

Layout (see docs/ARCHITECTURE.md and docs/runs.md)::

    config.json          resolved config
    manifest.json        status, data fingerprint, versions, git commit, timings, error
    run.lock             flock'ed around every change of the manifest / claims
    claims.json          folds being computed right now and by which owner
    owners/<token>.lock  held (flock) by a live process working on the run
    folds/<learner>/<SITE_ID>.parquet   one finished fold (written atomically)
    predictions.parquet  SITE_ID, DATE, learner, target, observed, predicted
    metrics.parquet      SITE_ID, learner, target, zone, R2, r2, RMSE, MAE, bias, n
    zone_summary.csv     target, zone, learner, rmse_mean, rmse_var, n_sites
    summary.md           readable summary
    models/<learner>/<name>.pt      saved state dicts (:mod:`fluxcore.modelstore`)
    units/<learner>/<unit>.npz      checkpoints of fast strategies (:mod:`fluxcore.modelstore`)
    damage.jsonl         one line per damaged file moved aside (<name>.damaged-<UTC time>)

Concurrency: a process claims a fold under ``run.lock`` before computing it, so two
processes asking for the same run share the work and every fold is computed once. A claim
whose owner died (its ``owners/<token>.lock`` can be locked again) is stale and is taken
over. Files are written to a temporary file in the same folder and renamed
(:func:`atomic_write_bytes`), so a killed process never leaves a half-written fold.

Self-repair: a fold file that cannot be read (truncated, zero bytes, not parquet, columns
or site of another run) is moved aside with a :class:`DamagedFileWarning` and is no longer
a finished fold, so the runner recomputes it. A damaged or missing result file of a finished
run is rebuilt from the fold files by :func:`repair_run`, which :func:`load_run` calls by
itself; :func:`list_runs` shows such a run as ``damaged`` with the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking (single process only)
    fcntl = None

from .config import RunConfig
from .errors import ConfigError, DataError
from .folds import fold_id
from .metrics import site_metrics, zone_summary
from .modelstore import ModelStoreMixin
from .storefiles import (
    DAMAGED_MARK,
    PARQUET_READ_ERRORS,
    DamagedFileWarning,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    csv_problem,
    damaged_files,
    file_signature,
    move_aside,
    now_iso,
    parquet_problem,
    safe_name,
    short_error,
)

__all__ = [
    "PREDICTION_COLUMNS", "METRIC_COLUMNS", "ZONE_SUMMARY_COLUMNS", "RESULT_FILES", "RUN_LIST_COLUMNS",
    "DamagedFileWarning", "RunStore", "RunResult", "run_key", "fold_id", "load_run", "repair_run",
    "result_problems", "list_runs", "delete_run", "resolve_run_dir", "is_run_folder",
    "atomic_write_bytes", "atomic_write_json", "atomic_write_parquet", "now_iso", "file_lock",
    "damaged_files", "DAMAGED_MARK",
]

PREDICTION_COLUMNS = ["SITE_ID", "DATE", "learner", "target", "observed", "predicted"]
METRIC_COLUMNS = ["SITE_ID", "learner", "target", "zone", "R2", "r2", "RMSE", "MAE", "bias", "n"]
ZONE_SUMMARY_COLUMNS = ["target", "zone", "learner", "rmse_mean", "rmse_var", "n_sites"]
RESULT_FILES = ("predictions.parquet", "metrics.parquet", "zone_summary.csv")
RUN_LIST_COLUMNS = ["key", "created", "status", "data", "learners", "targets", "n_sites", "path"]
_NUMERIC = {"predictions.parquet": ("observed", "predicted"),
            "metrics.parquet": ("R2", "r2", "RMSE", "MAE", "bias", "n")}


def run_key(fingerprint: str, config: dict, code_version: str) -> str:
    """Content hash (16 hex characters) keying a run.

    Parameters
    ----------
    fingerprint : str
        ``FluxDataset.fingerprint()``.
    config : dict
        Resolved run configuration (``RunConfig.resolved().to_dict()``); its ``data`` entry
        (a path or name) is left out, the fingerprint identifies the data.
    code_version : str
        :func:`fluxcore.provenance.code_version`.
    """
    cfg = {k: v for k, v in config.items() if k != "data"}
    blob = json.dumps({"data": fingerprint, "config": cfg, "code": code_version},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _read_json(path: Path) -> dict:
    """The JSON object in ``path`` ({} if there is no file); :class:`DataError` if unreadable."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DataError(path, f"is not valid JSON ({exc}); the run folder is damaged "
                              "(delete it to recompute the run)") from None
    if not isinstance(d, dict):
        raise DataError(path, f"holds a JSON {type(d).__name__}, not an object; the run folder is damaged")
    return d


def _check_config_present(run: Path) -> None:
    """:class:`DataError` when a run folder (it has ``manifest.json``) has lost ``config.json``."""
    if not (run / "config.json").is_file():
        raise DataError(run / "config.json", "is missing: the run's settings are lost; the run folder "
                                             "is damaged (delete it to recompute the run)")


#: Types of the manifest fields that fluxcore reads back (a field may be absent).
_MANIFEST_TYPES: dict[str, tuple[type, ...]] = {
    "status": (str,), "data": (dict,), "zones": (dict,), "skipped": (list,),
    "n_test_sites": (int,), "n_folds": (int,), "folds_done": (int,),
    "created": (str, type(None)), "finished": (str, type(None)),
}


def _check_manifest(m: dict, path: Path) -> dict:
    """``m`` unchanged, or :class:`DataError` naming the first field of the wrong type."""
    for key, types in _MANIFEST_TYPES.items():
        if key in m and (not isinstance(m[key], types) or isinstance(m[key], bool)):
            want = " or ".join("null" if t is type(None) else {"str": "text", "dict": "an object", "list": "a list",
                                                                 "int": "an integer"}[t.__name__] for t in types)
            raise DataError(path, f"field {key!r} is {json.dumps(m[key])[:60]}, not {want}; the run folder "
                                  "is damaged")
    return m


# ------------------------------------------------------------------------ locks
@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive ``fcntl.flock`` on ``path`` for the duration of the ``with`` block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+")
    try:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _lock_is_free(path: Path) -> bool:
    """True when nobody holds a flock on ``path`` (the owner is gone)."""
    if fcntl is None or not Path(path).exists():
        return True
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return True


def fold_file_problem(path: Path, learner: str, site: str):
    """Why ``path`` is not the fold file of (``learner``, ``site``); ``(None, table)`` when it is.

    Checks that it reads as parquet (whole file), has the prediction columns with numeric
    ``observed`` / ``predicted``, and holds only ``site`` and ``learner``.
    """
    import pyarrow.compute as pc

    problem, table = parquet_problem(path, PREDICTION_COLUMNS, numeric=("observed", "predicted"),
                                     what="fold file")
    if problem is not None:
        return problem, None
    for col, want in (("SITE_ID", site), ("learner", learner)):
        got = sorted(str(v) for v in pc.unique(table.column(col)).to_pylist())
        if table.num_rows and got != [want]:
            shown = ", ".join(got[:3]) + (", ..." if len(got) > 3 else "")
            return f"holds {col} {shown}, not {want!r}: a fold file of another site or run", None
    return None, table


# ------------------------------------------------------------------------ store
class RunStore(ModelStoreMixin):
    """One run folder: manifest, claims, fold files, saved models and units (no science here).

    Parameters
    ----------
    path : Path
        The run folder ``<runs_dir>/<key>``.

    Attributes
    ----------
    damaged : list of str
        One message per damaged file this object moved aside (also warned with
        :class:`DamagedFileWarning` and logged in ``damage.jsonl``).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.key = self.path.name
        self._owner_fh = None
        self.owner = None
        self.damaged: list[str] = []
        self._valid: dict[Path, tuple] = {}  # fold files read and checked, by file signature

    def __getstate__(self) -> dict:
        """A copy for worker processes (model and unit stores): without the owner's open lock
        file, which stays with the process that holds it."""
        state = dict(self.__dict__)
        state["_owner_fh"] = None
        state["owner"] = None
        return state

    # paths
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def fold_path(self, learner: str, site: str) -> Path:
        """``folds/<learner>/<SITE_ID>.parquet`` (names percent-encoded except ``-_.``)."""
        return self.path / "folds" / safe_name(learner, "learner") / f"{safe_name(site, 'site id')}.parquet"

    def lock(self):
        """Context manager: the run's exclusive lock (``run.lock``)."""
        return file_lock(self.path / "run.lock")

    # manifest
    def read_manifest(self) -> dict:
        return _read_json(self.manifest_path)

    def write_manifest(self, manifest: dict) -> None:
        """Write the manifest atomically (call while holding :meth:`lock`)."""
        manifest["updated"] = now_iso()
        atomic_write_json(self.manifest_path, manifest)

    def update_manifest(self, **changes) -> dict:
        with self.lock():
            m = self.read_manifest()
            m.update(changes)
            self.write_manifest(m)
            return m

    def initialise(self, config: dict, manifest: dict) -> dict:
        """Create the folder, ``config.json`` and ``manifest.json`` unless they exist."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self.lock():
            if not self.config_path.exists():
                atomic_write_json(self.config_path, config)
            m = self.read_manifest()
            if not m:
                m = dict(manifest)
                m.setdefault("created", now_iso())
                m.setdefault("status", "running")
                m.setdefault("fold_seconds", {})
                m.setdefault("sessions", [])
                self.write_manifest(m)
            return m

    # folds
    def _fold_files(self) -> list[tuple[str, str, Path]]:
        """``(learner, site, path)`` of every ``folds/*/*.parquet``, sorted by path."""
        folds = self.path / "folds"
        if not folds.is_dir():
            return []
        return [(unquote(f.parent.name), unquote(f.stem), f) for f in sorted(folds.glob("*/*.parquet"))]

    def _check_fold(self, learner: str, site: str, path: Path, need_table: bool = False):
        """``(ok, table)``: a fold file that fails :func:`fold_file_problem` is moved aside.

        A file is read once per store object: later calls compare its signature (inode,
        size, mtime) and trust it when unchanged. ``table`` is None unless ``need_table``.
        """
        sig = file_signature(path)
        if sig is None:
            return False, None
        if not need_table and self._valid.get(path) == sig:
            return True, None
        problem, table = fold_file_problem(path, learner, site)
        if problem is None:
            self._valid[path] = sig
            return True, table
        self._valid.pop(path, None)
        self.quarantine(path, f"{problem}; fold {fold_id(learner, site)} will be recomputed", sig)
        return False, None

    def quarantine(self, path: Path, problem: str, signature: tuple | None = None) -> Path | None:
        """Move a damaged file of this run aside (:func:`fluxcore.storefiles.move_aside`).

        Returns the new path (None when the file had changed or was gone); the message is
        appended to :attr:`damaged`.
        """
        moved = move_aside(path, problem, signature)
        if moved is not None:
            self.damaged.append(f"{path}: {problem} (moved aside to {moved.name})")
        return moved

    def finished_folds(self) -> set[str]:
        """``"learner/SITE_ID"`` of every readable fold file.

        A fold file that cannot be read (truncated, empty, not parquet, another run's
        columns or site) is moved aside to ``<name>.damaged-<UTC time>`` with a
        :class:`DamagedFileWarning` and is not listed, so the runner recomputes the fold.
        Each file is read once per store object (about 2 ms for a 2650-day fold).
        """
        return {fold_id(lrn, site) for lrn, site, f in self._fold_files() if self._check_fold(lrn, site, f)[0]}

    def write_fold(self, learner: str, site: str, df: pd.DataFrame) -> Path:
        """Store one fold's predictions atomically."""
        p = self.fold_path(learner, site)
        atomic_write_parquet(p, df)
        self._valid[p] = file_signature(p)
        return p

    def read_folds(self, expect: Iterable[str] | None = None) -> pd.DataFrame:
        """All readable fold files concatenated (long predictions table, id columns categorical).

        Damaged fold files are moved aside (see :meth:`finished_folds`) and left out.

        Parameters
        ----------
        expect : iterable of str, optional
            Fold ids (``"learner/SITE_ID"``) that must be present.

        Raises
        ------
        DataError
            When a fold of ``expect`` is missing or was damaged (naming the folds).
        """
        frames, have = [], set()
        for lrn, site, f in self._fold_files():
            ok, table = self._check_fold(lrn, site, f, need_table=True)
            if ok:
                frames.append(table.to_pandas())
                have.add(fold_id(lrn, site))
        if expect is not None:
            missing = sorted(set(expect) - have)
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                raise DataError(self.path / "folds", f"{len(missing)} fold file(s) missing or damaged "
                                                     f"({shown}); re-run the same request to recompute them")
        if not frames:
            return empty_predictions()
        return _categorise(pd.concat(frames, ignore_index=True))

    # results
    def build_results(self, zones: dict | None = None, expect: Iterable[str] | None = None):
        """``(predictions, metrics, zone_summary)`` assembled from the fold files.

        ``predictions`` is sorted by ``learner, target, SITE_ID, DATE`` (stable), the order of
        ``predictions.parquet``; ``zones`` maps ``SITE_ID`` to aridity zone (the manifest's
        ``zones``); ``expect`` as in :meth:`read_folds`.
        """
        preds = self.read_folds(expect)
        preds = preds.sort_values(["learner", "target", "SITE_ID", "DATE"], kind="stable").reset_index(drop=True)
        metrics = site_metrics(preds, zones or {})
        return preds, metrics, zone_summary(metrics)

    def write_results(self, predictions: pd.DataFrame, metrics: pd.DataFrame, zone_summary_df: pd.DataFrame,
                      only: Iterable[str] | None = None) -> list[str]:
        """Write the result files atomically (those named in ``only``, default all three)."""
        only = RESULT_FILES if only is None else tuple(only)
        writers = {"predictions.parquet": lambda p: atomic_write_parquet(p, predictions),
                   "metrics.parquet": lambda p: atomic_write_parquet(p, metrics),
                   "zone_summary.csv": lambda p: atomic_write_bytes(p, zone_summary_df.to_csv(index=False).encode())}
        for name in only:
            writers[name](self.path / name)
        return list(only)

    # ownership and claims
    def acquire_owner(self) -> str:
        """Register this process as working on the run (holds ``owners/<token>.lock``)."""
        if self.owner is not None:
            return self.owner
        token = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        p = self.path / "owners" / f"{token}.lock"
        p.parent.mkdir(parents=True, exist_ok=True)
        fh = open(p, "a+")
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        self._owner_fh, self.owner = fh, token
        return token

    def release_owner(self) -> None:
        """Give up ownership; release this owner's claims."""
        if self.owner is None:
            return
        with self.lock():
            claims = self._read_claims()
            claims = {k: v for k, v in claims.items() if v != self.owner}
            self._write_claims(claims)
        p = self.path / "owners" / f"{self.owner}.lock"
        with contextlib.suppress(OSError):
            p.unlink()
        if fcntl is not None:
            fcntl.flock(self._owner_fh.fileno(), fcntl.LOCK_UN)
        self._owner_fh.close()
        self._owner_fh, self.owner = None, None

    def _read_claims(self) -> dict:
        return _read_json(self.path / "claims.json")

    def _write_claims(self, claims: dict) -> None:
        atomic_write_json(self.path / "claims.json", claims)

    def live_owners(self) -> list[str]:
        """Tokens of owners whose process still holds its owner lock."""
        d = self.path / "owners"
        if not d.is_dir():
            return []
        return [p.stem for p in d.glob("*.lock") if not _lock_is_free(p)]

    def claim(self, wanted: list[str], limit: int) -> tuple[list[str], int]:
        """Claim up to ``limit`` of ``wanted`` folds not finished and not claimed by a live owner.

        Call without holding the lock (it takes it). Returns ``(claimed, n_busy)`` with
        ``n_busy`` the number of wanted folds claimed by *other* live owners.
        """
        with self.lock():
            claims = self._read_claims()
            finished = self.finished_folds()
            alive: dict[str, bool] = {}

            def is_alive(tok: str) -> bool:
                if tok == self.owner:
                    return True
                if tok not in alive:
                    alive[tok] = not _lock_is_free(self.path / "owners" / f"{tok}.lock")
                return alive[tok]

            claims = {k: v for k, v in claims.items() if k not in finished and is_alive(v)}
            got, busy = [], 0
            for f in wanted:
                if f in finished:
                    continue
                if f in claims:
                    if claims[f] != self.owner:
                        busy += 1
                    continue
                if len(got) < limit:
                    claims[f] = self.owner
                    got.append(f)
            self._write_claims(claims)
            return got, busy

    def finish_fold(self, fid: str, seconds: float, info: dict | None = None) -> None:
        """Record a stored fold's timing (and ``info``) and drop its claim."""
        with self.lock():
            claims = self._read_claims()
            claims.pop(fid, None)
            self._write_claims(claims)
            m = self.read_manifest()
            m.setdefault("fold_seconds", {})[fid] = round(float(seconds), 4)
            if info is not None:
                m.setdefault("fold_info", {})[fid] = info
            m["folds_done"] = len(self.finished_folds())
            if m.get("status") not in ("done",):
                m["status"] = "running"
            self.write_manifest(m)

    def unclaim(self, fids) -> None:
        with self.lock():
            claims = self._read_claims()
            for f in fids:
                if claims.get(f) == self.owner:
                    claims.pop(f)
            self._write_claims(claims)

    def effective_status(self, manifest: dict | None = None) -> str:
        """Manifest status, with ``running`` shown as ``interrupted`` when no owner is alive."""
        m = manifest if manifest is not None else self.read_manifest()
        status = m.get("status", "unknown")
        if status == "running" and not self.live_owners():
            return "interrupted"
        return status


def empty_predictions() -> pd.DataFrame:
    return pd.DataFrame({
        "SITE_ID": pd.Series(dtype="str"), "DATE": pd.Series(dtype="datetime64[ns]"),
        "learner": pd.Series(dtype="str"), "target": pd.Series(dtype="str"),
        "observed": pd.Series(dtype="float64"), "predicted": pd.Series(dtype="float64"),
    })


def _categorise(df: pd.DataFrame) -> pd.DataFrame:
    """Compact dtypes for the long predictions table (categories for the id columns)."""
    df = df.copy()
    for c in ("SITE_ID", "learner", "target"):
        if c in df:
            df[c] = df[c].astype("category")
    return df


# ------------------------------------------------------------------ run results
@dataclass
class RunResult:
    """A stored run loaded into memory.

    Attributes
    ----------
    path : Path
        The run folder.
    config : RunConfig
        The resolved configuration.
    manifest : dict
        The manifest (``status``, ``data``, ``code_version``, ``git_commit``, ``packages``,
        ``fold_seconds``, ``total_seconds``, ``created``, ``finished``, ``error``...).
    predictions : pandas.DataFrame
        ``SITE_ID, DATE, learner, target, observed, predicted`` (id columns categorical).
    metrics : pandas.DataFrame
        ``SITE_ID, learner, target, zone, R2, r2, RMSE, MAE, bias, n``.
    zone_summary : pandas.DataFrame
        ``target, zone, learner, rmse_mean, rmse_var, n_sites`` (paper Table 3).
    complete : bool
        False when loaded from the folds of an unfinished run (partial results).
    """

    path: Path
    config: object
    manifest: dict
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    zone_summary: pd.DataFrame
    complete: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))

    @property
    def learners(self) -> list[str]:
        return list(self.config.learners)

    @property
    def targets(self) -> list[str]:
        return list(self.config.targets)


# ------------------------------------------------------------------ repair / load
def is_run_folder(path: str | Path) -> bool:
    """True for a folder holding ``manifest.json`` or a run's ``config.json`` (a dict with ``learners``)."""
    p = Path(path)
    if not p.is_dir():
        return False
    if (p / "manifest.json").is_file():
        return True
    try:
        cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(cfg, dict) and "learners" in cfg


def _repair_hint(p: Path) -> str:
    return f"`fluxcore runs --repair {p.name} --runs-dir {p.parent}`"


def _rerun_hint(p: Path) -> str:
    return f"re-run the same request (e.g. `fluxcore loso --config {p / 'config.json'} --runs-dir {p.parent}`)"


def result_problems(run_dir: str | Path, deep: bool = False) -> dict[str, str]:
    """``{file name: problem}`` for the result files of ``run_dir`` that are missing or damaged.

    Parameters
    ----------
    run_dir : path
        A run folder.
    deep : bool
        Read the parquet files in full (finds damaged data pages); else read only their
        footers and schemas (milliseconds, used by :func:`list_runs`).
    """
    p = Path(run_dir)
    out = {}
    for name in ("predictions.parquet", "metrics.parquet"):
        cols = PREDICTION_COLUMNS if name == "predictions.parquet" else METRIC_COLUMNS
        problem, _ = parquet_problem(p / name, cols, numeric=_NUMERIC[name], deep=deep, what=name)
        if problem:
            out[name] = problem
    problem = csv_problem(p / "zone_summary.csv", ZONE_SUMMARY_COLUMNS)
    if problem:
        out["zone_summary.csv"] = problem
    return out


def repair_run(run_dir: str | Path) -> list[str]:
    """Rebuild the missing or damaged result files of a finished run.

    ``predictions.parquet`` is rebuilt from the fold files; ``metrics.parquet`` and
    ``zone_summary.csv`` from the (intact or rebuilt) predictions, exactly as the runner
    writes them. A damaged file is moved aside (``<name>.damaged-<UTC time>``), never
    deleted; intact files are not touched. The repair is recorded in the manifest
    (``repairs``). For an unfinished run only damaged fold files are moved aside (the runner
    recomputes them) and nothing is rebuilt.

    Returns
    -------
    list of str
        Names of the files rebuilt (empty when nothing was wrong).

    Raises
    ------
    ConfigError
        When ``run_dir`` is not a run folder.
    DataError
        When predictions must be rebuilt but fold files are missing or damaged. The damaged
        result files are then moved aside and the run is marked ``damaged``, so that
        re-running the same request recomputes the missing folds and the results; the
        message names the file, the problem, the missing folds and that command.
    """
    p = Path(run_dir)
    _require_run_folder(p)
    store = RunStore(p)
    with store.lock():
        m = store.read_manifest()
        if m.get("status") != "done":
            store.finished_folds()
            return []
        problems = result_problems(p, deep=True)
        if not problems:
            return []
        return _rebuild(store, m, problems)


def _rebuild(store: RunStore, m: dict, problems: dict[str, str]) -> list[str]:
    """Rebuild ``problems``' files (call under the run lock)."""
    p = store.path
    if "predictions.parquet" in problems:
        expect = set(m.get("fold_seconds", {}))
        try:
            preds, metrics, zs = store.build_results(m.get("zones", {}), expect=expect)
            n_folds = int(m.get("n_folds", 0) or 0)
            n_have = len(store.finished_folds())
            if n_have < n_folds:
                raise DataError(p / "folds", f"{n_folds - n_have} of the run's {n_folds} fold files are "
                                             "missing or damaged")
        except DataError as exc:
            name = next(iter(problems))
            for f in problems:
                if (p / f).is_file():
                    store.quarantine(p / f, f"{problems[f]}; cannot be rebuilt from the fold files")
            why = exc.problem.split("; re-run")[0]  # the folds that are missing, without the advice
            msg = (f"{problems[name]}; it cannot be rebuilt from the fold files ({exc.path}: {why}); "
                   f"{_rerun_hint(p)} to recompute the missing folds and the results")
            m["status"], m["error"] = "damaged", f"{name}: {msg}"
            store.write_manifest(m)
            raise DataError(p / name, msg) from None
    else:
        preds = pd.read_parquet(p / "predictions.parquet")
        metrics = site_metrics(preds, m.get("zones", {}))
        zs = zone_summary(metrics)
    if "metrics.parquet" not in problems:
        metrics = pd.read_parquet(p / "metrics.parquet")
        zs = zone_summary(metrics)
    rebuilt = [f for f in RESULT_FILES if f in problems]
    source = "the fold files" if "predictions.parquet" in problems else "predictions.parquet"
    for f in rebuilt:
        if (p / f).is_file():
            store.quarantine(p / f, f"{problems[f]}; rebuilt from {source}")
    store.write_results(preds, metrics, zs, only=rebuilt)
    warnings.warn(f"{p}: rebuilt {', '.join(rebuilt)} from {source} ("
                  + "; ".join(f"{f}: {why}" for f, why in problems.items()) + ")",
                  DamagedFileWarning, stacklevel=3)
    m.setdefault("repairs", []).append({"time": now_iso(), "rebuilt": rebuilt, "problems": problems})
    m["error"] = None
    store.write_manifest(m)
    return rebuilt


def _read_results(p: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The three result files; :class:`DataError` naming the first that cannot be read."""
    out = []
    for name in RESULT_FILES:
        f = p / name
        try:
            df = pd.read_csv(f) if name.endswith(".csv") else pd.read_parquet(f)
        except FileNotFoundError:
            raise DataError(f, "is missing") from None
        except (*PARQUET_READ_ERRORS, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f, f"cannot be read ({short_error(exc)})") from None
        cols = {"predictions.parquet": PREDICTION_COLUMNS, "metrics.parquet": METRIC_COLUMNS}.get(
            name, ZONE_SUMMARY_COLUMNS)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise DataError(f, f"has no column(s) {missing}: a file of another kind or another run")
        out.append(df)
    problem = csv_problem(p / "zone_summary.csv", ZONE_SUMMARY_COLUMNS)
    if problem:
        raise DataError(p / "zone_summary.csv", problem)
    return out[0], out[1], out[2]


def load_run(run_dir: str | Path) -> RunResult:
    """Load a run folder (finished, or partial from its fold files).

    A finished run whose result files are missing or damaged is repaired first
    (:func:`repair_run`, with a :class:`DamagedFileWarning`); ``extra["repaired"]`` lists what
    was rebuilt. Damaged fold files of an unfinished run are moved aside and left out.

    Raises
    ------
    ConfigError
        When ``run_dir`` is not a run folder.
    DataError
        When ``config.json`` / ``manifest.json`` are damaged, or a result file is damaged and
        cannot be rebuilt (the message names the file and the command that repairs it).
    """
    p = Path(run_dir)
    if (p / "manifest.json").is_file():
        _check_config_present(p)
    if not (p / "config.json").is_file() or not (p / "manifest.json").is_file():
        raise ConfigError(f"{p}: not a fluxcore run folder (config.json / manifest.json missing)")
    config = RunConfig.from_dict(_read_json(p / "config.json"), source=str(p / "config.json"))
    manifest = _check_manifest(_read_json(p / "manifest.json"), p / "manifest.json")
    if manifest.get("status") == "done":
        extra = {}
        try:
            preds, metrics, zs = _read_results(p)
        except DataError as exc:
            try:
                rebuilt = repair_run(p)
            except OSError as err:  # e.g. a read-only runs folder
                raise DataError(exc.path, f"{exc.problem}; it could not be rebuilt here ({short_error(err)}): "
                                          f"run {_repair_hint(p)}") from None
            if not rebuilt:  # changed between the read and the check: report it as it is
                raise DataError(exc.path, f"{exc.problem}; repair with {_repair_hint(p)}") from None
            manifest = _read_json(p / "manifest.json")
            preds, metrics, zs = _read_results(p)
            extra = {"repaired": rebuilt}
        return RunResult(p, config, manifest, preds, metrics, zs, complete=True, extra=extra)
    if manifest.get("status") == "damaged":
        raise DataError(p, f"{manifest.get('error') or 'the run is damaged'}")
    store = RunStore(p)
    preds = store.read_folds()
    zones = manifest.get("zones", {})
    metrics = site_metrics(preds, zones)
    return RunResult(p, config, manifest, preds, metrics, zone_summary(metrics), complete=False)


# ------------------------------------------------------------------ list / delete
def list_runs(runs_dir: str | Path = "runs") -> pd.DataFrame:
    """One row per run folder under ``runs_dir``, newest first.

    Columns ``key, created, status, data, learners, targets, n_sites, path`` plus
    ``n_folds, folds_done, finished, problem``. ``status`` is ``interrupted`` for a run
    marked running whose processes are gone, and ``damaged`` for a run whose manifest or
    config cannot be read or whose result files are missing or damaged (footers checked, a
    few ms per run); ``problem`` then names the file, the problem and the command that
    repairs it (else None). Nothing is changed on disk.
    """
    rows = []
    d = Path(runs_dir)
    for m_path in sorted(d.glob("*/manifest.json")) if d.is_dir() else []:
        run = m_path.parent
        problem = None
        try:
            m = _check_manifest(_read_json(m_path), m_path)
            _check_config_present(run)
            cfg = _read_json(run / "config.json")
            status = RunStore(run).effective_status(m)
        except DataError as exc:  # one damaged folder must not hide the other runs
            m, cfg, status, problem = {}, {}, "damaged", str(exc)
        if status == "done":
            bad = result_problems(run)
            if bad:
                status = "damaged"
                problem = "; ".join(f"{run / f}: {why}" for f, why in bad.items()) + f"; repair with {_repair_hint(run)}"
        elif status == "damaged" and problem is None:
            problem = m.get("error") or "damaged"
        data = m.get("data", {})
        rows.append({
            "key": run.name,
            "created": m.get("created"),
            "status": status,
            "data": data.get("name") or cfg.get("data") or problem,
            "learners": ",".join(cfg.get("learners", [])),
            "targets": ",".join(cfg.get("targets", [])),
            "n_sites": int(m.get("n_test_sites", 0)),
            "path": str(run),
            "n_folds": int(m.get("n_folds", 0)),
            "folds_done": int(m.get("folds_done", 0)),
            "finished": m.get("finished"),
            "problem": problem,
        })
    cols = RUN_LIST_COLUMNS + ["n_folds", "folds_done", "finished", "problem"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("created", ascending=False, na_position="last").reset_index(drop=True)


def _require_run_folder(p: Path, action: str = "") -> None:
    if not is_run_folder(p):
        raise ConfigError(f"{p}: not a fluxcore run folder (no manifest.json or run config.json){action}")


def _require_inside(p: Path, runs_dir: str | Path, action: str) -> None:
    """ConfigError unless ``p`` is a real folder directly inside ``runs_dir`` (no symlink)."""
    root = Path(runs_dir).resolve()
    if p.is_symlink() or p.resolve().parent != root:
        raise ConfigError(f"{p}: not a folder directly inside the runs folder {runs_dir}{action}")


def resolve_run_dir(runs_dir: str | Path, key: str) -> Path:
    """The run folder ``<runs_dir>/<key>`` for a key given on the command line.

    Raises
    ------
    ConfigError
        When ``key`` is a path rather than a folder name (``../x``, ``a/b``, absolute),
        names no folder, a symlink or a folder that is not a run.
    """
    k = str(key)
    if k in ("", ".", "..") or "/" in k or "\\" in k or Path(k).is_absolute():
        raise ConfigError(f"run key {key!r}: give the name of a run folder inside {runs_dir} "
                          "(as listed by `fluxcore runs`), not a path")
    p = Path(runs_dir) / k
    if not p.is_dir():
        raise ConfigError(f"{p}: no such run folder (see `fluxcore runs --runs-dir {runs_dir}`)")
    _require_inside(p, runs_dir, "")
    _require_run_folder(p)
    return p


def delete_run(run_dir: str | Path, runs_dir: str | Path | None = None) -> None:
    """Delete a run folder.

    Parameters
    ----------
    run_dir : path
        The run folder.
    runs_dir : path, optional
        The runs folder ``run_dir`` must be directly inside (symlinks refused). Front ends
        (CLI, dashboard) must pass it.

    Raises
    ------
    ConfigError
        When ``run_dir`` is outside ``runs_dir``, a symlink, not a run folder (no
        ``manifest.json`` or run ``config.json``), or being computed by a live process;
        nothing is deleted then.
    """
    p = Path(run_dir)
    if runs_dir is not None:
        _require_inside(p, runs_dir, "; nothing deleted")
    if p.is_symlink():
        raise ConfigError(f"{p}: is a symbolic link, not a run folder; nothing deleted")
    _require_run_folder(p, "; nothing deleted")
    if RunStore(p).live_owners():
        raise ConfigError(f"{p}: the run is being computed by another process; not deleted")
    shutil.rmtree(p)


def wait_seconds(poll: float = 0.5) -> None:
    time.sleep(poll)
