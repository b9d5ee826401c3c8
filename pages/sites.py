"""Sites map: filter by aridity zone and IGBP class; select sites by clicking markers,
drawing a rectangle/polygon, or from the list (kept in sync; persists across pages)."""

from __future__ import annotations

import streamlit as st
from streamlit_folium import st_folium

from fluxcore import maps
from fluxcore.variables import ZONES
from pages import _common as common

st.title("Sites map")
common.sync_url()  # the address keeps data source, selection and run (reload-safe)
ds = common.require_dataset()
src = common.data_src()
sites = common.site_table(src)
all_ids = sites["SITE_ID"].tolist()

# keep the multiselect in step with the shared selection (set before the widget exists)
selection = [s for s in common.selected_sites() if s in set(all_ids)]
if st.session_state.get("site_ms") != selection:
    st.session_state["site_ms"] = selection


def _set(ids) -> None:
    common.set_selected_sites(ids)
    st.session_state["site_ms"] = common.selected_sites()


def _from_multiselect() -> None:
    common.set_selected_sites(st.session_state["site_ms"])


zone_opts = [z for z in ZONES if (sites["ARIDITY_ZONE"] == z).any()]
if sites["ARIDITY_ZONE"].isna().any():
    zone_opts.append("unknown")
igbp_opts = sorted(sites["IGBP"].dropna().astype(str).unique().tolist())

f1, f2, f3 = st.columns([2, 2, 1])
zones = f1.multiselect("Aridity zone", zone_opts, key="f_zones", placeholder="all zones")
igbp = f2.multiselect("IGBP vegetation class", igbp_opts, key="f_igbp", placeholder="all classes")
tiles = f3.toggle("Online tiles", value=False, key="tiles",
                  help="OpenStreetMap background tiles need internet; offline, country outlines are drawn.")
shown = maps.filter_sites(sites, zones, igbp)
shown_ids = shown["SITE_ID"].tolist()

b1, b2, b3, b4 = st.columns([1.2, 1.2, 1, 2.6])
b1.button(f"Select shown ({len(shown_ids)})", key="sel_shown", width="stretch",
          on_click=lambda: _set(maps.merge_selection(common.selected_sites(), add=shown_ids)))
b2.button("Unselect shown", key="unsel_shown", width="stretch",
          on_click=lambda: _set(maps.merge_selection(common.selected_sites(), remove=shown_ids)))
def _clear() -> None:
    """Empty the selection and remove the drawn shapes (the map is mounted anew)."""
    _set([])
    st.session_state["map_mount"] = st.session_state.get("map_mount", 0) + 1


b3.button("Clear", key="sel_clear", width="stretch", on_click=_clear)
b4.caption("Click a marker to add/remove it; draw a rectangle or polygon (tools at the top left) "
           "to add every site inside.")

# The base map depends on the filters only; the selection is a separate layer that
# streamlit-folium updates in place (no redraw: zoom, position and drawings are kept).
# *Clear* mounts the map anew (new key) so that the drawn shapes go too.
mount = st.session_state.get("map_mount", 0)
map_key = f"sites_map_{mount}" if mount else "sites_map"
map_id = (tuple(zones), tuple(igbp), tiles, mount)


def _on_map_change() -> None:
    """Clicks and drawings, handled before the rerun (so the page runs once per click)."""
    current = common.selected_sites()
    new, st.session_state["_map_seen"] = maps.apply_map_state(
        st.session_state.get(map_key), shown, current, st.session_state.get("_map_seen"), map_id)
    if new != current:
        _set(new)


m = maps.sites_map(shown, years=shown.set_index("SITE_ID")["YEARS"], tiles=tiles, asset_url=common.asset_url(),
                   selection_legend=True, embed_basemap=False)
st_folium(m, key=map_key, height=520, use_container_width=True,
          feature_group_to_add=maps.selection_layer(shown, selection), on_change=_on_map_change,
          returned_objects=["last_object_clicked", "last_object_clicked_tooltip", "last_object_clicked_count",
                            "all_drawings"])

st.multiselect(f"Selected sites ({len(selection)} of {len(all_ids)})", all_ids, key="site_ms",
               on_change=_from_multiselect, placeholder="none selected: runs use all sites (or the zones chosen on Train)")
if selection:
    tab = sites[sites["SITE_ID"].isin(selection)][
        ["SITE_ID", "NAME", "IGBP", "ARIDITY_ZONE", "ARIDITY_INDEX", "LAT", "LON", "YEARS"]]
    st.dataframe(tab, hide_index=True, width="stretch", height=min(300, 38 + 35 * len(tab)))
    st.page_link("pages/train.py", label=f"Train on these {len(selection)} sites", icon=":material/model_training:")
no_pos = sites["LAT"].isna() | sites["LON"].isna()
if no_pos.any():
    st.caption(f"{int(no_pos.sum())} site(s) have no position and are not on the map: "
               + ", ".join(sites.loc[no_pos, "SITE_ID"].head(10)))
