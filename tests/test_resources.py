"""fluxcore.resources: packaged assets and the lookup order of the external folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxcore import resources
from fluxcore.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def test_asset_path_finds_packaged_files():
    p = resources.asset_path("leaflet", "leaflet.js")
    assert p.is_file() and p.is_relative_to(ROOT / "fluxcore" / "assets")
    assert resources.asset_path() == ROOT / "fluxcore" / "assets"
    assert resources.asset_path("basemap", "countries.geojson").stat().st_size > 10_000


def test_top_level_assets_is_the_packaged_folder():
    """One copy: the top-level ``assets`` (and ``static``) lead to ``fluxcore/assets``."""
    packaged = (ROOT / "fluxcore" / "assets").resolve()
    assert (ROOT / "assets").resolve() == packaged
    assert (ROOT / "static").resolve() == packaged


def test_asset_path_missing_names_the_file():
    with pytest.raises(DataError, match=r"leaflet/nope\.js: packaged asset missing"):
        resources.asset_path("leaflet", "nope.js")


@pytest.mark.parametrize("bad", [("..", "pyproject.toml"), ("/etc/passwd",), ("leaflet/../../x",)])
def test_asset_path_refuses_paths_outside_the_assets(bad):
    with pytest.raises(ValueError, match="not a relative path inside fluxcore/assets"):
        resources.asset_path(*bad)


def test_project_root_in_this_checkout():
    assert resources.project_root() == ROOT


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """A fake checkout ``proj/`` beside ``shared/`` and a current directory ``elsewhere/run``."""
    proj = tmp_path / "a" / "proj"
    (proj / "fluxcore").mkdir(parents=True)
    (proj / "pyproject.toml").write_text("[project]\nname = 'fluxcore'\n")
    monkeypatch.setattr(resources, "PACKAGE_DIR", proj / "fluxcore")
    cwd = tmp_path / "b" / "elsewhere" / "run"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("FLUXCORE_ANCHORS", raising=False)
    monkeypatch.delenv("FLUXCORE_DATA", raising=False)
    rel = Path("shared", "anchors", "carbonfluxbench")
    return {"checkout": tmp_path / "a" / rel, "cwd": tmp_path / "b" / "elsewhere" / rel,
            "proj": proj, "monkeypatch": monkeypatch, "tmp": tmp_path}


def test_anchor_lookup_order(layout):
    checkout, cwd = layout["checkout"], layout["cwd"]
    # nothing exists: the checkout candidate is named, require lists both places
    assert resources.anchors_dir() == checkout
    with pytest.raises(DataError, match="CarbonFluxBench anchor folder not found") as e:
        resources.anchors_dir(require=True)
    assert str(checkout) in str(e.value) and str(cwd) in str(e.value) and "FLUXCORE_ANCHORS" in str(e.value)
    # only the current directory's ../shared exists
    cwd.mkdir(parents=True)
    assert resources.anchors_dir(require=True) == cwd
    # the checkout comes before the current directory
    checkout.mkdir(parents=True)
    assert resources.anchors_dir() == checkout
    # the variable comes first, even when it does not exist (a typo is not replaced)
    given = layout["tmp"] / "mine"
    layout["monkeypatch"].setenv("FLUXCORE_ANCHORS", str(given))
    assert resources.anchors_dir() == given
    with pytest.raises(DataError, match=r"mine: CarbonFluxBench anchor folder given by FLUXCORE_ANCHORS does not exist"):
        resources.anchors_dir(require=True)
    given.mkdir()
    assert resources.anchors_dir(require=True) == given


def test_installed_package_skips_the_checkout(layout):
    (layout["proj"] / "pyproject.toml").unlink()  # a site-packages folder has none
    layout["checkout"].mkdir(parents=True)
    assert resources.project_root() is None
    assert resources.anchors_dir() == layout["cwd"]


def test_data_dir_order_and_demo_source(layout):
    mp, tmp = layout["monkeypatch"], layout["tmp"]
    real = tmp / "a" / "shared" / "data" / "fluxnet2015"
    real.mkdir(parents=True)
    assert resources.data_dir(require=True) == real
    mp.setenv("FLUXCORE_DATA", "demo")  # the dashboard's default source name, not a folder
    assert resources.data_dir() == real
    mp.setenv("FLUXCORE_DATA", str(tmp / "elsewhere-data"))
    assert resources.data_dir() == tmp / "elsewhere-data"
    with pytest.raises(DataError, match="given by FLUXCORE_DATA does not exist"):
        resources.data_dir(require=True)


def test_anchors_module_uses_the_lookup(layout):
    from fluxcore.anchors import default_anchor_dir

    layout["cwd"].mkdir(parents=True)
    assert default_anchor_dir() == layout["cwd"]
