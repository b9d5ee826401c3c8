"""A normal (non-editable) wheel install works away from the source tree.

The wheel is built from a copy of the project's top-level files and ``fluxcore/`` only (no
top-level ``assets``, no ``tests``), installed with ``--no-deps`` into a fresh virtual
environment that sees this machine's packages (``--system-site-packages``), and exercised from
a folder outside the repository: the import comes from the venv, the packaged assets exist,
the offline maps reference only packaged files, the console script runs, and the anchor
lookup follows its documented order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _source_packages() -> set[str]:
    """Dotted names of the regular packages (folders with ``__init__.py``) under fluxcore/."""
    out = set()
    for init in (ROOT / "fluxcore").rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if "__pycache__" not in rel.parts:
            out.add(".".join(rel.parts))
    return out


def _source_assets() -> set[str]:
    base = ROOT / "fluxcore" / "assets"
    return {f"fluxcore/assets/{p.relative_to(base).as_posix()}" for p in base.rglob("*") if p.is_file()}


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """Build the wheel from a copy of the sources and install it into a fresh venv."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for f in ROOT.iterdir():  # pyproject.toml, README.md, licence files, ...
        if f.is_file() and not f.is_symlink():
            shutil.copy2(f, src / f.name)
    shutil.copytree(ROOT / "fluxcore", src / "fluxcore",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-cache-dir", "-q", "-w", dist, src], cwd=tmp)
    (wheel,) = dist.glob("fluxcore-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    py = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    # --ignore-installed: an editable fluxcore in the system site-packages must not count
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps",
          "--ignore-installed", "--no-cache-dir", wheel])
    outside = tmp / "work" / "project"  # cwd of the checks; ../shared/... is built per test
    outside.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FLUXCORE_ANCHORS", "FLUXCORE_DATA", "PYTHONSTARTUP")}
    return {"wheel": wheel, "venv": venv, "py": py, "cwd": outside, "env": env}


def _check(install, code: str, **env) -> dict:
    r = _run([install["py"], "-c", textwrap.dedent(code)], cwd=install["cwd"],
             env={**install["env"], **env})
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_wheel_holds_every_subpackage_and_asset(install):
    names = set(zipfile.ZipFile(install["wheel"]).namelist())
    wheel_pkgs = {n.rsplit("/", 1)[0].replace("/", ".") for n in names if n.endswith("/__init__.py")}
    missing_pkgs = _source_packages() - wheel_pkgs
    assert not missing_pkgs, f"subpackages missing from the wheel: {sorted(missing_pkgs)}"
    missing = _source_assets() - names
    assert not missing, f"assets missing from the wheel: {sorted(missing)}"
    for rel in ("leaflet/leaflet.js", "leaflet/LICENSE", "leaflet-draw/leaflet.draw.js",
                "jquery/jquery.min.js", "basemap/countries.geojson"):
        assert f"fluxcore/assets/{rel}" in names
    assert not [n for n in names if n.startswith(("tests/", "assets/", "static/"))]


def test_installed_fluxcore_imports_from_the_venv_and_finds_its_assets(install):
    out = _check(install, """
        import json, fluxcore
        from fluxcore import resources
        p = resources.asset_path("leaflet", "leaflet.js")
        print(json.dumps({"file": fluxcore.__file__, "asset": str(p), "is_file": p.is_file(),
                          "root": str(resources.project_root())}))
    """)
    venv = install["venv"].resolve()
    assert Path(out["file"]).resolve().is_relative_to(venv), out
    assert not Path(out["file"]).resolve().is_relative_to(ROOT), out
    assert out["is_file"] and Path(out["asset"]).resolve().is_relative_to(venv), out
    assert out["root"] == "None"  # installed: no checkout around the package


def test_installed_offline_maps_reference_only_packaged_files(install):
    out = _check(install, """
        import json, re
        import pandas as pd
        from fluxcore import maps
        from fluxcore.resources import asset_path
        sites = pd.DataFrame({"SITE_ID": ["XX-A", "XX-B"], "NAME": ["a", "b"],
                              "LAT": [45.0, -10.0], "LON": [7.0, 120.0], "IGBP": ["ENF", "GRA"],
                              "ARIDITY_INDEX": [1.2, 0.1], "ARIDITY_ZONE": ["humid", "arid"]})
        served = maps.sites_map(sites, draw=True).get_root().render()
        urls = (re.findall(r'<script[^>]+src="([^"]+)"', served)
                + re.findall(r'<link[^>]+href="([^"]+)"', served))
        served_ok = {u: asset_path(*u.removeprefix("/app/static/").split("/")).is_file()
                     for u in urls}
        alone = maps.standalone_html(maps.sites_map(sites, draw=True))
        left = (re.findall(r'<script[^>]+src="([^"]+)"', alone)
                + re.findall(r'<link[^>]+href="([^"]+)"', alone))
        leaflet = asset_path("leaflet", "leaflet.js").read_text()[:200]
        print(json.dumps({"served": served_ok, "external": maps.external_urls(served),
                          "left": left, "inlined": leaflet in alone,
                          "basemap": "Countries (offline basemap)" in alone}))
    """)
    assert out["served"] and all(u.startswith("/app/static/") for u in out["served"]), out
    assert all(out["served"].values()), out  # every served link is a packaged file
    assert out["external"] == [] and out["left"] == [], out
    assert out["inlined"] and out["basemap"], out


def test_installed_console_script_runs(install):
    script = install["venv"] / ("Scripts" if os.name == "nt" else "bin") / "fluxcore"
    assert script.is_file()
    r = _run([script, "--help"], cwd=install["cwd"], env=install["env"])
    assert "usage: fluxcore" in r.stdout and "loso" in r.stdout


def test_installed_anchor_lookup_order(install):
    code = """
        import json
        from fluxcore.anchors import default_anchor_dir
        from fluxcore.resources import anchors_dir
        print(json.dumps({"a": str(anchors_dir()), "d": str(default_anchor_dir())}))
    """
    cfb = install["cwd"].parent / "shared" / "anchors" / "carbonfluxbench"
    cfb.mkdir(parents=True, exist_ok=True)
    out = _check(install, code)  # current directory's ../shared/anchors/carbonfluxbench
    assert Path(out["a"]).resolve() == cfb.resolve() and out["a"] == out["d"], out
    env_dir = install["cwd"] / "my-anchors"
    out = _check(install, code, FLUXCORE_ANCHORS=str(env_dir))  # the variable wins
    assert Path(out["a"]) == env_dir and out["a"] == out["d"], out
