"""Build the dashboard's offline assets (one-off; results are committed under ``assets/``).

What it does
------------
1. ``npm install leaflet leaflet-draw world-atlas topojson-client`` in a temporary folder
   (needs ``npm`` and access to the npm registry; nothing is installed in the project).
2. Copies jQuery's ``dist/jquery.min.js`` (folium's popups use ``$``) to ``assets/jquery/``;
   Leaflet's ``dist/leaflet.js``, ``leaflet.css``, ``images/`` and ``LICENSE`` to
   ``assets/leaflet/`` and Leaflet.draw's ``dist/leaflet.draw.js``, ``leaflet.draw.css``,
   ``images/`` to ``assets/leaflet-draw/`` (with its MIT licence text).
3. Converts world-atlas ``countries-110m.json`` (TopoJSON, Natural Earth 1:110m, ISC) to
   GeoJSON with topojson-client's ``topo2geo``, rounds coordinates to 2 decimals (about 1 km,
   below the 1:110m resolution), leaves out Antarctica and unwraps rings that cross the
   antimeridian, into ``assets/basemap/countries.geojson``.

Run: ``python scripts/build_offline_assets.py`` from the project root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
PACKAGES = ["jquery@3.7.1", "leaflet@1.9.4", "leaflet-draw@1.0.4", "world-atlas@2.0.2", "topojson-client@3.1.0"]

LEAFLET_DRAW_LICENSE = """Copyright 2012-2017 Jon West, Jacob Toye, and Leaflet

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def _round(coords, nd: int = 2):
    if isinstance(coords, (int, float)):
        return round(float(coords), nd)
    return [_round(c, nd) for c in coords]


def _unwrap_antimeridian(geometry: dict) -> None:
    """Rings that cross the antimeridian (Fiji, Chukotka) get east longitudes (> 180), so
    that Leaflet does not draw an edge across the whole map."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    for poly in polys:
        for ring in poly:
            lons = [pt[0] for pt in ring]
            if max(lons) - min(lons) > 180:
                for pt in ring:
                    if pt[0] < 0:
                        pt[0] = round(pt[0] + 360.0, 2)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["npm", "init", "-y"], cwd=tmp, check=True, capture_output=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", *PACKAGES], cwd=tmp, check=True)
        nm = tmp / "node_modules"

        dst = ASSETS / "leaflet"
        shutil.rmtree(dst, ignore_errors=True)
        (dst).mkdir(parents=True)
        for f in ("leaflet.js", "leaflet.css"):
            shutil.copy(nm / "leaflet/dist" / f, dst / f)
        shutil.copytree(nm / "leaflet/dist/images", dst / "images")
        shutil.copy(nm / "leaflet/LICENSE", dst / "LICENSE")

        # folium's popups (folium.Html) build their DOM node with jQuery's $()
        dst = ASSETS / "jquery"
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        shutil.copy(nm / "jquery/dist/jquery.min.js", dst / "jquery.min.js")
        shutil.copy(nm / "jquery/LICENSE.txt", dst / "LICENSE.txt")

        dst = ASSETS / "leaflet-draw"
        shutil.rmtree(dst, ignore_errors=True)
        dst.mkdir(parents=True)
        for f in ("leaflet.draw.js", "leaflet.draw.css"):
            shutil.copy(nm / "leaflet-draw/dist" / f, dst / f)
        shutil.copytree(nm / "leaflet-draw/dist/images", dst / "images")
        (dst / "LICENSE").write_text(LEAFLET_DRAW_LICENSE)

        raw = tmp / "countries.geojson"
        with open(nm / "world-atlas/countries-110m.json") as fin:
            subprocess.run([str(nm / ".bin/topo2geo"), f"countries={raw}"], stdin=fin, check=True)
        gj = json.loads(raw.read_text())
        # no flux tower is in Antarctica; its outline would only add a band at the map's bottom
        gj["features"] = [f for f in gj["features"] if f["properties"].get("name") != "Antarctica"]
        for feat in gj["features"]:
            feat["geometry"]["coordinates"] = _round(feat["geometry"]["coordinates"])
            _unwrap_antimeridian(feat["geometry"])
            feat["properties"] = {"name": feat["properties"].get("name", "")}
        out = ASSETS / "basemap"
        out.mkdir(parents=True, exist_ok=True)
        (out / "countries.geojson").write_text(json.dumps(gj, separators=(",", ":")))
        shutil.copy(nm / "world-atlas/LICENSE", out / "LICENSE-world-atlas")
    print("assets written to", ASSETS)


if __name__ == "__main__":
    main()
