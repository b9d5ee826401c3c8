"""Files of the run store: atomic writes, safe file names, checks, and moving damaged files aside.

Nothing here knows about runs; :mod:`fluxcore.runstore` and :mod:`fluxcore.modelstore` build
on it. A file that cannot be used is never deleted: :func:`move_aside` renames it to
``<name>.damaged-<UTC time>`` next to where it was, so it can be inspected, and the caller
recomputes what it held.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from .errors import ConfigError

DAMAGED_MARK = ".damaged-"
DAMAGE_LOG = "damage.jsonl"
# errors pyarrow raises for a file that is not a readable parquet file (ArrowInvalid is a
# ValueError, ArrowIOError and "Corrupt snappy compressed data" are OSErrors)
PARQUET_READ_ERRORS = (OSError, ValueError)


class DamagedFileWarning(UserWarning):
    """A stored file could not be read; it was moved aside and what it held is recomputed."""


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def safe_name(text: str, what: str = "name") -> str:
    """``text`` as one file name: percent-encoded except ``-_.``, never hidden, ``.`` or ``..``.

    Raises
    ------
    ConfigError
        When ``text`` is empty.
    """
    text = str(text)
    if not text:
        raise ConfigError(f"empty {what}: a stored file needs a name")
    q = quote(text, safe="-_.")
    if q.startswith("."):  # hidden files are temporary files in the store; '.' and '..' are folders
        q = "%2E" + q[1:]
    return q


# ------------------------------------------------------------------ atomic files
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, then ``os.replace`` it."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, df: pd.DataFrame) -> None:
    """``df.to_parquet`` into a temporary file in the same folder, then ``os.replace``."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


@contextlib.contextmanager
def atomic_path(path: Path):
    """Context manager: a temporary path next to ``path``, renamed to ``path`` on success.

    The temporary file is ``.<name>.<random>.tmp`` in the same folder (same file system, so
    ``os.replace`` is atomic); it is removed when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------ damaged files
def file_signature(path: Path) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of ``path``; None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def move_aside(path: Path, problem: str, signature: tuple | None = None) -> Path | None:
    """Rename a damaged file to ``<name>.damaged-<UTC time>``, log it and warn.

    Parameters
    ----------
    path : Path
        The damaged file.
    problem : str
        What is wrong with it (one phrase, e.g. ``"is empty (0 bytes)"``).
    signature : tuple, optional
        :func:`file_signature` of the file that was found damaged: when the file changed
        since (another process already replaced it), nothing is moved.

    Returns
    -------
    Path or None
        The new name, or None when the file was gone or had changed.

    Notes
    -----
    One JSON line ``{time, file, moved_to, problem}`` is appended to ``damage.jsonl`` in the
    nearest folder above holding a ``manifest.json`` (the run folder), and a
    :class:`DamagedFileWarning` names the file, the problem and the new name.
    """
    path = Path(path)
    if signature is not None and file_signature(path) != signature:
        return None
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}{DAMAGED_MARK}{stamp}-{n}")
        n += 1
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    _log_damage(path, target, problem)
    warnings.warn(f"{path}: {problem}; moved aside to {target.name}", DamagedFileWarning, stacklevel=3)
    return target


def _log_damage(path: Path, target: Path, problem: str) -> None:
    for folder in path.parents:
        if (folder / "manifest.json").is_file():
            line = json.dumps({"time": now_iso(), "file": str(path.relative_to(folder)),
                               "moved_to": target.name, "problem": problem})
            with contextlib.suppress(OSError), open(folder / DAMAGE_LOG, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            return


def damaged_files(folder: Path) -> list[Path]:
    """Files moved aside by :func:`move_aside` anywhere below ``folder``, sorted."""
    return sorted(Path(folder).rglob(f"*{DAMAGED_MARK}*"))


# ------------------------------------------------------------------ checks
def short_error(exc: BaseException) -> str:
    """First line of an exception's message (at most 160 characters)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def parquet_problem(path: Path, columns: Sequence[str], *, numeric: Sequence[str] = (),
                    deep: bool = True, what: str = "file"):
    """Why ``path`` is not a usable parquet file with ``columns`` (None when it is).

    Parameters
    ----------
    path : Path
        The parquet file.
    columns : sequence of str
        Columns the file must have.
    numeric : sequence of str
        Columns that must be numeric.
    deep : bool
        Read the whole file (finds damaged data pages); else only its footer (fast).
    what : str
        What the file should be, for the message (``"fold file"``).

    Returns
    -------
    (str or None, pyarrow.Table or None)
        The problem (a phrase to follow the file name) and, when ``deep`` and readable, the
        table.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing", None
    if size == 0:
        return "is empty (0 bytes)", None
    try:
        schema = pq.read_schema(path)  # the footer: clean messages for cut / foreign files
        table = pq.read_table(path) if deep else None
    except PARQUET_READ_ERRORS as exc:
        return f"cannot be read as parquet (truncated or overwritten: {short_error(exc)})", None
    names = list(schema.names)
    missing = [c for c in columns if c not in names]
    if missing:
        return (f"has columns {names}, not those of a {what} (missing {missing}): "
                "a file of another kind or another run"), None
    for c in numeric:
        t = schema.field(c).type
        if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
            return f"column {c!r} holds {t}, not numbers: a file of another kind or another run", None
    return None, table


def csv_problem(path: Path, columns: Sequence[str]) -> str | None:
    """Why ``path`` is not a complete CSV file with ``columns`` (None when it is).

    A complete file ends with a newline and every row has as many fields as the header, so
    a file cut in the middle of a line is found.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return "is missing"
    if not raw:
        return "is empty (0 bytes)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text (overwritten by binary data?)"
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    missing = [c for c in columns if c not in header]
    if missing:
        return f"has header {header}, not the columns {list(columns)} (missing {missing})"
    bad = next((i for i, r in enumerate(rows[1:], start=2) if len(r) != len(header)), None)
    if bad is not None:
        return f"line {bad} has {len(rows[bad - 1])} fields, not {len(header)} (file cut or edited)"
    if not text.endswith("\n"):
        return "does not end with a newline (file cut in the middle of a line)"
    return None
