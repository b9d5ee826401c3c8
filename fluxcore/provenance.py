"""Provenance of a run: package versions, git commit, code version and data fingerprint.

A stored run records what produced it, so that a number in a report can be traced back to
the code and the data: ``fluxcore.__version__`` plus a hash of the fluxcore source files
(:func:`code_version`), the git commit of the source tree when there is one
(:func:`git_commit`), the versions of the numerical packages (:func:`package_versions`)
and the dataset fingerprint (:meth:`fluxcore.dataset.FluxDataset.fingerprint`).
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import __version__

#: Packages whose versions are recorded in every run manifest.
PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "numba", "torch", "geopandas",
            "dask", "distributed")

PACKAGE_DIR = Path(__file__).resolve().parent

#: Modules that only present, report or schedule results: they cannot change a computed
#: number, so editing them does not invalidate stored runs (everything else does).
PRESENTATION_MODULES = frozenset({
    "plots.py", "maps.py", "jobs.py", "report.py", "__main__.py", "anchors.py",
    "skill.py", "resources.py", "summary.py",
})
#: Sub-packages whose modules cannot change a number (the command line).
PRESENTATION_PACKAGES = frozenset({"cli"})


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (``"absent"`` when not installed), plus Python."""
    out = {"python": platform.python_version(), "fluxcore": __version__}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def git_commit(path: str | Path = PACKAGE_DIR) -> str:
    """``git rev-parse HEAD`` of the repository holding ``path``; ``"unknown"`` if none.

    A ``+dirty`` suffix says that tracked fluxcore files differ from that commit.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        commit = head.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."],
                               cwd=path, capture_output=True, text=True, timeout=10)
        return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-256 (first 12 hex characters) of the contents of the computing fluxcore sources.

    Every ``fluxcore/**/*.py`` file except :data:`PRESENTATION_MODULES` enters the hash (path
    relative to the package and contents, in sorted order), so the value changes whenever code
    that can change a number changes. Cached per process.
    """
    h = hashlib.sha256()
    for f in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = f.relative_to(PACKAGE_DIR).as_posix()
        if "__pycache__" in f.parts or rel in PRESENTATION_MODULES or rel.split("/")[0] in PRESENTATION_PACKAGES:
            continue
        h.update(str(f.relative_to(PACKAGE_DIR)).encode())
        h.update(b"\0")
        h.update(f.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def code_version() -> str:
    """``"<fluxcore version>+<source hash>"``, e.g. ``"0.1.0+3f2a9c1d0b7e"``."""
    return f"{__version__}+{source_hash()}"


def environment() -> dict:
    """Everything recorded in a manifest about the software that ran."""
    return {
        "code_version": code_version(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "executable": sys.executable,
    }
