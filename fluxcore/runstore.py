"""Run folders: content-addressed storage, resume, locking, listing and loading.

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

Concurrency: a process claims a fold under ``run.lock`` before computing it, so two
processes asking for the same run share the work and every fold is computed once. A claim
whose owner died (its ``owners/<token>.lock`` can be locked again) is stale and is taken
over. Files are written to a temporary file in the same folder and renamed
(:func:`atomic_write_bytes`), so a killed process never leaves a half-written fold.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, unquote

import pandas as pd

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking (single process only)
    fcntl = None

from .errors import ConfigError, DataError

PREDICTION_COLUMNS = ["SITE_ID", "DATE", "learner", "target", "observed", "predicted"]
RUN_LIST_COLUMNS = ["key", "created", "status", "data", "learners", "targets", "n_sites", "path"]


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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


# ------------------------------------------------------------------ atomic files
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then ``os.replace`` it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    """``df.to_parquet`` into a temporary file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def fold_id(learner: str, site: str) -> str:
    return f"{learner}/{site}"


# ------------------------------------------------------------------------ store
class RunStore:
    """One run folder: manifest, claims and fold files (no science in here).

    Parameters
    ----------
    path : Path
        The run folder ``<runs_dir>/<key>``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.key = self.path.name
        self._owner_fh = None
        self.owner = None

    # paths
    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def fold_path(self, learner: str, site: str) -> Path:
        return self.path / "folds" / learner / f"{quote(str(site), safe='-_.')}.parquet"

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
    def finished_folds(self) -> set[str]:
        """``"learner/SITE_ID"`` of every fold file present."""
        out = set()
        folds = self.path / "folds"
        if folds.is_dir():
            for f in folds.glob("*/*.parquet"):
                out.add(fold_id(f.parent.name, unquote(f.stem)))
        return out

    def write_fold(self, learner: str, site: str, df: pd.DataFrame) -> Path:
        """Store one fold's predictions atomically."""
        p = self.fold_path(learner, site)
        atomic_write_parquet(p, df)
        return p

    def read_folds(self) -> pd.DataFrame:
        """All fold files concatenated (long predictions table)."""
        files = sorted((self.path / "folds").glob("*/*.parquet"))
        if not files:
            return empty_predictions()
        return _categorise(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True))

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


def load_run(run_dir: str | Path) -> RunResult:
    """Load a run folder (finished, or partial from its fold files).

    Raises
    ------
    ConfigError
        When ``run_dir`` is not a run folder.
    """
    from .config import RunConfig
    from .metrics import site_metrics, zone_summary

    p = Path(run_dir)
    if not (p / "config.json").is_file() or not (p / "manifest.json").is_file():
        raise ConfigError(f"{p}: not a fluxcore run folder (config.json / manifest.json missing)")
    config = RunConfig.from_dict(_read_json(p / "config.json"), source=str(p / "config.json"))
    manifest = _read_json(p / "manifest.json")
    files = [p / "predictions.parquet", p / "metrics.parquet", p / "zone_summary.csv"]
    if manifest.get("status") == "done" and all(f.is_file() for f in files):
        preds = pd.read_parquet(files[0])
        metrics = pd.read_parquet(files[1])
        zs = pd.read_csv(files[2])
        return RunResult(p, config, manifest, preds, metrics, zs, complete=True)
    store = RunStore(p)
    preds = store.read_folds()
    zones = manifest.get("zones", {})
    metrics = site_metrics(preds, zones)
    return RunResult(p, config, manifest, preds, metrics, zone_summary(metrics), complete=False)


def list_runs(runs_dir: str | Path = "runs") -> pd.DataFrame:
    """One row per run folder under ``runs_dir``, newest first.

    Columns ``key, created, status, data, learners, targets, n_sites, path`` plus
    ``n_folds, folds_done, finished``. ``status`` is ``interrupted`` for a run marked running
    whose processes are gone.
    """
    rows = []
    d = Path(runs_dir)
    for m_path in sorted(d.glob("*/manifest.json")) if d.is_dir() else []:
        run = m_path.parent
        try:
            m = _read_json(m_path)
            cfg = _read_json(run / "config.json")
            status, damage = RunStore(run).effective_status(m), None
        except DataError as exc:  # one damaged folder must not hide the other runs
            m, cfg, status, damage = {}, {}, "damaged", str(exc)
        data = m.get("data", {})
        rows.append({
            "key": run.name,
            "created": m.get("created"),
            "status": status,
            "data": damage or data.get("name") or cfg.get("data"),
            "learners": ",".join(cfg.get("learners", [])),
            "targets": ",".join(cfg.get("targets", [])),
            "n_sites": int(m.get("n_test_sites", 0)),
            "path": str(run),
            "n_folds": int(m.get("n_folds", 0)),
            "folds_done": int(m.get("folds_done", 0)),
            "finished": m.get("finished"),
        })
    cols = RUN_LIST_COLUMNS + ["n_folds", "folds_done", "finished"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values("created", ascending=False, na_position="last").reset_index(drop=True)


def delete_run(run_dir: str | Path) -> None:
    """Delete a run folder (refuses folders that are not runs, and runs being computed)."""
    p = Path(run_dir)
    if not (p / "manifest.json").is_file():
        raise ConfigError(f"{p}: not a fluxcore run folder (no manifest.json); nothing deleted")
    if RunStore(p).live_owners():
        raise ConfigError(f"{p}: the run is being computed by another process; not deleted")
    shutil.rmtree(p)


def wait_seconds(poll: float = 0.5) -> None:
    time.sleep(poll)
