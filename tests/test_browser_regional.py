"""The Regional maps page in a real browser (Debian chromium through Playwright), offline.

Starts ``streamlit run app.py`` with a temporary run store and demo cache, opens Regional
maps on the SYNTHETIC demo grid (5° cells: ``FLUXCORE_DEMOGRID_RES=5``), waits for the map,
the monthly cycle and the scatter, and checks that every request stays on the machine.
Never runs ``playwright install``: it uses /usr/bin/chromium and skips when absent.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("cache"))
    with streamlit_server(tmp_path_factory, FLUXCORE_CACHE=cache, FLUXCORE_DEMOGRID_RES="5.0") as srv:
        yield srv


def test_regional_maps_offline(server):
    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: requests.append(r.url))
        page.set_default_timeout(30_000)
        page.goto(server["url"] + "/")
        page.get_by_text("Where to go next").first.wait_for(timeout=60_000)
        page.locator('[data-testid="stSidebarNav"] a', has_text="Regional maps").first.click()
        page.get_by_role("heading", name="Regional maps").first.wait_for()
        # demo grid generated (first use), model trained, three plotly figures drawn
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=240_000)
        assert page.locator(".js-plotly-plot .heatmaplayer, .js-plotly-plot .hm").count() >= 1 or \
            page.locator(".js-plotly-plot").first.is_visible()
        assert page.get_by_text("SYNTHETIC", exact=False).first.is_visible()
        assert page.get_by_role("button", name="Download NetCDF").first.is_visible()
        page.screenshot(path=str(ARTIFACTS / "regional.png"))
        browser.close()
    outside = [u for u in requests if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).hostname not in ("127.0.0.1", "localhost")]
    assert not outside, outside[:10]
