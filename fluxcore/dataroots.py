"""What a web front end may read and where it writes uploads: data roots and the upload store.

A dashboard served to a class must not read arbitrary server folders, must not keep every
uploaded file for good, and must not show server paths in its messages. This module holds the
rules (no Streamlit here; the Data page calls it):

Data roots
    Server folders and files can be read only below a *data root*. Default roots are the
    project's ``data/`` folder and ``../shared/data`` next to the project (each where it
    exists); ``$FLUXCORE_DATA_ROOTS`` (``os.pathsep``-separated folders) adds roots.
    :func:`resolve_server_path` resolves symbolic links and ``..`` before checking, and its
    messages show paths relative to a root (:func:`display_path`), never absolute paths.
Upload store
    :class:`UploadStore` keeps uploads per browser session in
    ``<upload dir>/<session id>/<content hash>/<file name>``; the upload dir is
    ``$FLUXCORE_UPLOADS_DIR`` (default ``<runs dir>/_uploads``, the runs dir being
    ``$FLUXCORE_RUNS_DIR`` or ``<project>/runs``). Files larger than the size limit
    (``$FLUXCORE_UPLOAD_MAX_MB``, default 200) are refused before anything is written;
    rejected uploads are removed (:meth:`UploadStore.discard`); session folders untouched for
    longer than ``$FLUXCORE_UPLOAD_MAX_AGE_HOURS`` (default 24) are removed by
    :meth:`UploadStore.cleanup`.

:func:`public_message` turns any error text into one a browser user may see: uploaded files
by the name the user gave them, data-root paths relative to their root, other absolute paths
reduced to their last component.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, DataError

#: The project folder (the one holding ``fluxcore/``).
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_DATA_ROOTS = "FLUXCORE_DATA_ROOTS"
ENV_UPLOADS_DIR = "FLUXCORE_UPLOADS_DIR"
ENV_UPLOAD_MAX_MB = "FLUXCORE_UPLOAD_MAX_MB"
ENV_UPLOAD_MAX_AGE = "FLUXCORE_UPLOAD_MAX_AGE_HOURS"
DEFAULT_UPLOAD_MAX_MB = 200.0
DEFAULT_UPLOAD_MAX_AGE_HOURS = 24.0
#: File types accepted as uploads (lower-case suffixes).
UPLOAD_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
_SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
#: An absolute POSIX path inside a message (not preceded by a word character, dot, colon or slash).
#: The loader's command-line hint for column names (``--columns their=CANON``), with its lead-in.
_CLI_HINT_RE = re.compile(r"\s*(?:name them in the column map|map yours with)?\s*\(?--columns [^);|]*\)?")
_WEB_HINT = "match them to fluxcore's names in the column selection of an upload"
_ABS_PATH_RE = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"`,;:()\[\]]+/)*[^\s/'\"`,;:()\[\]]+")


# ------------------------------------------------------------------------------ data roots
@dataclass(frozen=True)
class DataRoot:
    """A folder below which the web app may read data.

    Parameters
    ----------
    path : Path
        The folder, resolved (absolute, no symbolic links).
    label : str
        Short name shown to users instead of the absolute path (``"shared/data"``).
    """

    path: Path
    label: str


def data_roots(env: Mapping[str, str] | None = None) -> list[DataRoot]:
    """The configured data roots that exist, defaults first.

    Parameters
    ----------
    env : mapping, optional
        Environment to read ``FLUXCORE_DATA_ROOTS`` from (default ``os.environ``).

    Returns
    -------
    list of DataRoot
        ``<project>/data`` (label ``data``) and ``<project>/../shared/data`` (label
        ``shared/data``) where they are folders, then each folder of
        ``$FLUXCORE_DATA_ROOTS`` (label: its name; folders that do not exist are left out).
        The same folder is listed once.
    """
    env = os.environ if env is None else env
    cands: list[tuple[Path, str]] = [(PROJECT_ROOT / "data", "data"),
                                     (PROJECT_ROOT.parent / "shared" / "data", "shared/data")]
    for part in str(env.get(ENV_DATA_ROOTS, "") or "").split(os.pathsep):
        if part.strip():
            p = Path(part.strip()).expanduser()
            cands.append((p, p.name or "root"))
    roots: list[DataRoot] = []
    for p, label in cands:
        try:
            rp = p.resolve()
        except OSError:
            continue
        if not rp.is_dir() or any(r.path == rp for r in roots):
            continue
        taken = {r.label for r in roots}
        base, k = label, 2
        while label in taken:
            label, k = f"{base} ({k})", k + 1
        roots.append(DataRoot(rp, label))
    return roots


def _root_of(path: Path, roots: Iterable[DataRoot]) -> DataRoot | None:
    """The root that holds ``path`` (resolved), the deepest one when roots nest."""
    best = None
    for r in roots:
        if path == r.path or r.path in path.parents:
            if best is None or len(r.path.parts) > len(best.path.parts):
                best = r
    return best


def display_path(path: str | Path, roots: Iterable[DataRoot] | None = None) -> str:
    """How a server path is shown to users: ``<root label>/<path below the root>``.

    A path outside every root is shown by its last component only.
    """
    roots = data_roots() if roots is None else list(roots)
    p = Path(path)
    try:
        rp = p.resolve()
    except OSError:
        rp = p
    root = _root_of(rp, roots)
    if root is None:
        return p.name or str(p)
    rel = rp.relative_to(root.path).as_posix()
    return root.label if rel == "." else f"{root.label}/{rel}"


def _shown(text: str) -> str:
    """The name given, as it may be echoed: relative text as is, absolute text by its name."""
    p = Path(text)
    return (p.name or "/") if p.is_absolute() else text


def resolve_server_path(text: str | Path, roots: Iterable[DataRoot] | None = None) -> Path:
    """Resolve a server path typed or chosen by a user, refusing anything outside the roots.

    Parameters
    ----------
    text : str or Path
        A path relative to a data root (``"fluxnet2015"``, ``"shared/data/fluxnet2015"`` with
        the root's label in front) or an absolute path below a root.
    roots : iterable of DataRoot, optional
        Default :func:`data_roots`.

    Returns
    -------
    Path
        The resolved path (absolute, symbolic links and ``..`` resolved); it exists.

    Raises
    ------
    DataError
        Empty text, no data root configured, a path outside every root (after resolving
        links and ``..``) or one that does not exist. The message shows the path relative to
        a root or the name given, never an absolute server path.
    """
    roots = data_roots() if roots is None else list(roots)
    raw = str(text).strip()
    if not raw:
        raise DataError(None, "give a data folder or file below one of the data folders")
    if not roots:
        raise DataError(None, "this server offers no data folders (set FLUXCORE_DATA_ROOTS)")
    labels = ", ".join(r.label for r in roots)
    outside = DataError(_shown(raw), f"is not below a data folder of this server "
                                     f"(data folders: {labels}); choose one of the folders offered")
    given = Path(raw).expanduser()
    if given.is_absolute():
        cands = [given]
    else:
        cands = []
        for r in roots:  # "<label>/rest" first, then "rest" below each root
            if raw == r.label or raw.startswith(r.label + "/"):
                cands.append(r.path / raw[len(r.label):].lstrip("/"))
        cands += [r.path / given for r in roots]
    inside: list[Path] = []
    escapes = False  # a path that exists but leads (by .. or a link) out of the roots
    for c in cands:
        try:
            rc = c.resolve()
        except (OSError, RuntimeError):  # symlink loops
            continue
        if _root_of(rc, roots) is None:
            escapes = escapes or rc.exists()
            continue
        if rc.exists():
            return rc
        inside.append(rc)
    if escapes or not inside:
        raise outside
    raise DataError(display_path(inside[0], roots), "does not exist")


def list_data_sources(roots: Iterable[DataRoot] | None = None, *, max_depth: int = 3,
                      limit: int = 200) -> list[Path]:
    """Folders and tidy files below the roots that look loadable, for a selection box.

    A folder is offered when it holds the prepared layout (``daily.parquet`` + ``sites.csv``)
    or official FLUXNET daily files (``FLX_*_DD_*.csv`` / ``AMF_*_DD_*.csv``); a ``.csv`` /
    ``.parquet`` file is offered when its folder is not such a folder (sub-folders of a data
    folder are searched too). Hidden entries,
    links leading outside the roots and anything deeper than ``max_depth`` are skipped.

    Parameters
    ----------
    roots : iterable of DataRoot, optional
        Default :func:`data_roots`.
    max_depth : int, default 3
        Folder levels below a root that are searched.
    limit : int, default 200
        At most this many entries (the search stops there).

    Returns
    -------
    list of Path
        Resolved paths, sorted by :func:`display_path` within each root.
    """
    from .sources import find_official_files

    roots = data_roots() if roots is None else list(roots)
    out: list[Path] = []
    for root in roots:
        found: list[Path] = []
        stack = [(root.path, 0)]
        while stack and len(out) + len(found) < limit:
            folder, depth = stack.pop()
            try:
                entries = sorted(e for e in folder.iterdir() if not e.name.startswith("."))
            except OSError:
                continue
            names = {e.name for e in entries}
            try:
                official = bool(find_official_files(folder))
            except OSError:
                official = False
            layout = {"daily.parquet", "sites.csv"} <= names or official
            if layout:
                found.append(folder)
            for e in entries:
                try:
                    re_ = e.resolve()
                except (OSError, RuntimeError):
                    continue
                if _root_of(re_, [root]) is None:
                    continue
                if re_.is_dir() and depth < max_depth:
                    stack.append((re_, depth + 1))
                elif not layout and re_.is_file() and re_.suffix.lower() in UPLOAD_SUFFIXES:
                    found.append(re_)
        found = [f for f in dict.fromkeys(found) if f not in out]
        out += sorted(found, key=lambda p: display_path(p, roots))[: max(0, limit - len(out))]
    return out


# ------------------------------------------------------------------------------ messages
def public_message(text: str, names: Mapping[str | Path, str] | None = None,
                   roots: Iterable[DataRoot] | None = None) -> str:
    """An error text without server paths, for a browser user.

    Parameters
    ----------
    text : str
        The message (e.g. ``str(DataError)``).
    names : mapping, optional
        ``{server path: name to show}``, e.g. a stored upload and the file name the user
        gave it. Longer paths are replaced first.
    roots : iterable of DataRoot, optional
        Paths below a root are shown relative to it (default :func:`data_roots`).

    Returns
    -------
    str
        The text with each known path replaced, any other absolute path reduced to its last
        component, and the loader's command-line hint (``--columns their_name=GPP``)
        replaced by the web page's way (the column selection of an upload).
    """
    roots = data_roots() if roots is None else list(roots)
    subs: dict[str, str] = {}
    for path, name in (names or {}).items():
        for form in {str(path), str(Path(path).resolve())}:
            subs[form] = str(name)
    for r in roots:
        subs.setdefault(str(r.path), r.label)
    for old in sorted(subs, key=len, reverse=True):
        text = text.replace(old, subs[old])
    text = _CLI_HINT_RE.sub(" " + _WEB_HINT, text)
    return _ABS_PATH_RE.sub(lambda m: Path(m.group(0)).name, text)


# ------------------------------------------------------------------------------ uploads
def new_session_id() -> str:
    """A random, unguessable id for one browser session's upload folder."""
    return secrets.token_urlsafe(12)


def _env_number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw is None or not str(raw).strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{key} must be a positive number, got {raw!r}")
    return value


def _size_text(n_bytes: int) -> str:
    """``"3.2 MB"``, ``"12 kB"`` or ``"850 bytes"``."""
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:.1f} MB"
    return f"{n_bytes / 2**10:.0f} kB" if n_bytes >= 2**10 else f"{n_bytes} bytes"


def _safe_name(name: str) -> str:
    """The user's file name reduced to a safe last component (letters, digits, ``._-``)."""
    base = Path(str(name).replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "upload"
    return stem[:60] + suffix


@dataclass
class UploadStore:
    """Uploaded files, one folder per browser session, with a size limit and an age limit.

    Parameters
    ----------
    base : Path
        The upload folder (created when the first file is stored).
    max_mb : float, default 200
        Largest accepted file [MB, 2**20 bytes].
    max_age_hours : float, default 24
        Session folders not touched for longer [h] are removed by :meth:`cleanup`.
    """

    base: Path
    max_mb: float = DEFAULT_UPLOAD_MAX_MB
    max_age_hours: float = DEFAULT_UPLOAD_MAX_AGE_HOURS

    @classmethod
    def from_env(cls, runs_dir: str | Path | None = None,
                 env: Mapping[str, str] | None = None) -> UploadStore:
        """The store configured by the environment.

        ``$FLUXCORE_UPLOADS_DIR`` (default ``<runs_dir>/_uploads``; ``runs_dir`` defaults to
        ``$FLUXCORE_RUNS_DIR`` or ``<project>/runs``), ``$FLUXCORE_UPLOAD_MAX_MB`` (200) and
        ``$FLUXCORE_UPLOAD_MAX_AGE_HOURS`` (24).

        Raises
        ------
        ConfigError
            A limit that is not a positive number (the message names the variable).
        """
        env = os.environ if env is None else env
        if runs_dir is None:
            runs_dir = env.get("FLUXCORE_RUNS_DIR") or PROJECT_ROOT / "runs"
        base = Path(env.get(ENV_UPLOADS_DIR) or Path(runs_dir) / "_uploads").expanduser()
        return cls(base=base.resolve(),
                   max_mb=_env_number(env, ENV_UPLOAD_MAX_MB, DEFAULT_UPLOAD_MAX_MB),
                   max_age_hours=_env_number(env, ENV_UPLOAD_MAX_AGE, DEFAULT_UPLOAD_MAX_AGE_HOURS))

    @property
    def max_bytes(self) -> int:
        """The size limit [bytes]."""
        return int(self.max_mb * 2**20)

    def session_dir(self, session_id: str) -> Path:
        """The folder of one session (not created).

        Raises
        ------
        ValueError
            ``session_id`` is not an id made by :func:`new_session_id` (8-64 characters from
            letters, digits, ``_`` and ``-``).
        """
        if not _SESSION_RE.match(str(session_id)):
            raise ValueError(f"invalid upload session id {session_id!r}")
        return self.base / session_id

    def contains(self, path: str | Path) -> bool:
        """Whether ``path`` lies in the upload folder."""
        try:
            rp = Path(path).resolve()
        except OSError:
            return False
        return self.base in rp.parents

    def check_size(self, name: str, n_bytes: int) -> None:
        """Refuse a file larger than the limit.

        Raises
        ------
        DataError
            ``"<name>: the file is 3.2 MB, more than the upload limit of 2 MB"``.
        """
        if n_bytes > self.max_bytes:
            raise DataError(name, f"the file is {_size_text(n_bytes)}, more than the upload limit of "
                                  f"{self.max_mb:g} MB")

    def save(self, session_id: str, name: str, data: bytes) -> Path:
        """Store an uploaded file in the session's folder.

        Parameters
        ----------
        session_id : str
            From :func:`new_session_id`.
        name : str
            The file name the user gave (only its last component is used).
        data : bytes
            The content.

        Returns
        -------
        Path
            ``<base>/<session>/<hash of content>/<name>``: the same content is stored once
            (a second upload only refreshes the folder's time), and the dataset keeps the
            user's file name.

        Raises
        ------
        DataError
            Larger than the limit, or not a ``.csv`` / ``.parquet`` file (named as given;
            nothing is written).
        """
        shown = Path(str(name).replace("\\", "/")).name or "upload"
        self.check_size(shown, len(data))
        safe = _safe_name(shown)
        if Path(safe).suffix not in UPLOAD_SUFFIXES:
            raise DataError(shown, "unsupported file type: upload a .csv or .parquet file")
        folder = self.session_dir(session_id) / hashlib.sha256(data).hexdigest()[:16]
        dst = folder / safe
        folder.mkdir(parents=True, exist_ok=True)
        if not (dst.is_file() and dst.stat().st_size == len(data)):
            tmp = folder / f".{safe}.{secrets.token_hex(4)}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        self.touch(session_id)
        return dst

    def discard(self, *paths: str | Path | None) -> None:
        """Remove stored uploads (and their content folders when left empty).

        Paths outside the upload folder are left alone.
        """
        for p in paths:
            if p is None or not self.contains(p):
                continue
            p = Path(p).resolve()
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            parent = p.parent
            while parent != self.base and self.base in parent.parents:
                try:
                    parent.rmdir()  # only when empty
                except OSError:
                    break
                parent = parent.parent

    def touch(self, session_id: str) -> None:
        """Mark a session's folder as in use now (it then survives :meth:`cleanup` a while)."""
        d = self.session_dir(session_id)
        if d.is_dir():
            os.utime(d)

    def cleanup(self, now: float | None = None) -> list[str]:
        """Remove session folders not used for longer than ``max_age_hours``.

        A folder's age is counted from the newest modification time of the folder or
        anything in it. Only folders named like session ids are removed; other entries of
        the upload folder are left alone.

        Parameters
        ----------
        now : float, optional
            Current time [s since the epoch] (default ``time.time()``).

        Returns
        -------
        list of str
            The ids of the removed sessions.
        """
        now = time.time() if now is None else now
        limit = self.max_age_hours * 3600.0
        removed: list[str] = []
        try:
            entries = list(self.base.iterdir())
        except OSError:
            return removed
        for d in entries:
            if not (_SESSION_RE.match(d.name) and d.is_dir() and not d.is_symlink()):
                continue
            try:
                newest = max([d.stat().st_mtime] + [f.stat().st_mtime for f in d.rglob("*")])
            except OSError:
                continue
            if now - newest > limit:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        return sorted(removed)


__all__ = [
    "DataRoot", "data_roots", "display_path", "resolve_server_path", "list_data_sources",
    "public_message", "new_session_id", "UploadStore", "UPLOAD_SUFFIXES",
]
