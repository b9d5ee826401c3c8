"""Where fluxcore finds its files on disk: packaged assets, CarbonFluxBench anchors, real data.

Every module that needs one of these paths asks this module, so that a git checkout, an
editable install and a normal (non-editable) wheel install all work.

Packaged assets
---------------
The offline dashboard assets (Leaflet, Leaflet.draw, jQuery, the country basemap, the
dashboard's CSS, logo and icon; licences in ``fluxcore/assets/README.md``) live in
``fluxcore/assets/`` and are shipped in the wheel as package data. In a checkout the
top-level ``assets`` is a link to that folder (and ``static -> assets`` is what Streamlit
serves at ``/app/static/``), so there is one copy of every file. :func:`asset_path` is the only
way fluxcore locates them.

External folders (never shipped)
--------------------------------
:func:`anchors_dir` (CarbonFluxBench per-site scores) and :func:`data_dir` (the prepared
FLUXNET2015 layout) are looked up in this order:

1. the environment variable ``FLUXCORE_ANCHORS`` / ``FLUXCORE_DATA`` when set: used as given,
   even if it does not exist (a typo is reported, never silently replaced);
   ``FLUXCORE_DATA="demo"`` (the dashboard's default *source* name) is not a folder and is
   skipped;
2. in a checkout (``pyproject.toml`` beside the ``fluxcore`` package folder):
   ``<project root>/../shared/anchors/carbonfluxbench`` or
   ``<project root>/../shared/data/fluxnet2015``, if it exists;
3. ``<current directory>/../shared/anchors/carbonfluxbench`` or
   ``<current directory>/../shared/data/fluxnet2015``, if it exists (how an installed
   fluxcore finds them when started from the project folder).

When neither 2. nor 3. exists, the first candidate is returned so that the caller's error
names the place that was expected; with ``require=True`` a
:class:`~fluxcore.errors.DataError` lists every place tried instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

#: The installed (or checked-out) ``fluxcore`` package folder.
PACKAGE_DIR = Path(__file__).resolve().parent
#: Folder of the packaged assets.
ASSETS_DIR = PACKAGE_DIR / "assets"

#: Environment variable naming the CarbonFluxBench anchor folder.
ANCHORS_ENV = "FLUXCORE_ANCHORS"
#: Environment variable naming the real-data folder (or the dashboard's default source).
DATA_ENV = "FLUXCORE_DATA"
#: Anchor folder relative to the folder that holds the project (``../shared/...``).
ANCHORS_REL = ("shared", "anchors", "carbonfluxbench")
#: Real-data folder relative to the folder that holds the project.
DATA_REL = ("shared", "data", "fluxnet2015")

#: Source names accepted in ``$FLUXCORE_DATA`` that are not folders.
_NON_FOLDER_SOURCES = frozenset({"demo"})


def asset_path(*parts: str) -> Path:
    """Path of a packaged asset file or folder, e.g. ``asset_path("leaflet", "leaflet.js")``.

    Parameters
    ----------
    *parts : str
        Path components below ``fluxcore/assets/``; none gives the assets folder itself.

    Returns
    -------
    Path
        Absolute path of an existing file or folder.

    Raises
    ------
    DataError
        If the asset is missing (an incomplete install or checkout), naming the path and how
        to restore it.
    """
    for p in parts:
        if Path(p).is_absolute() or ".." in Path(p).parts:
            raise ValueError(f"asset_path: {p!r} is not a relative path inside fluxcore/assets")
    path = ASSETS_DIR.joinpath(*parts)
    if not path.exists():
        raise DataError(path, "packaged asset missing: reinstall fluxcore, or in a checkout "
                              "restore fluxcore/assets/ (python scripts/build_offline_assets.py)")
    return path


def project_root() -> Path | None:
    """Root of the git checkout holding this ``fluxcore`` package, or None when installed.

    A checkout is recognised by ``pyproject.toml`` beside the ``fluxcore`` package folder
    (a wheel install puts the package in ``site-packages``, which has none).
    """
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() else None


def _env_path(env: str, skip: frozenset[str] = frozenset()) -> Path | None:
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser() if value and value not in skip else None


def _lookup(env: str, rel: tuple[str, ...], what: str, require: bool,
            skip_env: frozenset[str] = frozenset()) -> Path:
    given = _env_path(env, skip_env)
    if given is not None:
        if require and not given.is_dir():
            raise DataError(given, f"{what} folder given by {env} does not exist")
        return given
    root = project_root()
    cands = [root.parent.joinpath(*rel)] if root is not None else []
    cands.append(Path.cwd().resolve().parent.joinpath(*rel))
    cands = list(dict.fromkeys(cands))  # checkout and current directory often agree
    for c in cands:
        if c.is_dir():
            return c
    if require:
        tried = "; ".join(str(c) for c in cands)
        raise DataError(None, f"{what} folder not found (tried {tried}); set {env} to its path")
    return cands[0]


def anchors_dir(require: bool = False) -> Path:
    """Folder of the CarbonFluxBench per-site score files (lookup order: module docstring).

    Parameters
    ----------
    require : bool
        Raise :class:`~fluxcore.errors.DataError` listing every place tried when no candidate
        exists; otherwise return the first candidate.

    Returns
    -------
    Path
        The first existing candidate (or the first candidate).
    """
    return _lookup(ANCHORS_ENV, ANCHORS_REL, "CarbonFluxBench anchor", require)


def data_dir(require: bool = False) -> Path:
    """Folder of the prepared FLUXNET2015 data (lookup order: module docstring).

    ``$FLUXCORE_DATA`` set to a source name that is not a folder (``"demo"``) is skipped.

    Parameters
    ----------
    require : bool
        Raise :class:`~fluxcore.errors.DataError` listing every place tried when no candidate
        exists; otherwise return the first candidate.

    Returns
    -------
    Path
        The first existing candidate (or the first candidate).
    """
    return _lookup(DATA_ENV, DATA_REL, "FLUXNET2015 data", require, _NON_FOLDER_SOURCES)


__all__ = [
    "ASSETS_DIR", "PACKAGE_DIR", "ANCHORS_ENV", "DATA_ENV", "asset_path", "project_root",
    "anchors_dir", "data_dir",
]
