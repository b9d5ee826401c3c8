"""Helpers shared by the dashboard pages: cached loaders, session state, banners.

Streamlit stays thin: these functions read/write ``st.session_state`` and cache calls into
fluxcore; all science is in ``fluxcore``.

Caching
-------
* ``dataset(src)``: a process-wide registry held in ``st.cache_resource`` that loads each source
  once in a background thread (one shared, read-only FluxDataset per source; large DataFrames
  are not copied per call as ``st.cache_data`` would). Pages can poll instead of blocking.
* ``run_result(path, stamp)``: ``st.cache_resource`` keyed by the manifest's modification
  time, so a finished run is re-read once; treated read-only.
* small derived tables (site table, years of data, distances, list of runs): ``st.cache_data``.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import streamlit as st

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run app.py` from another folder
    sys.path.insert(0, str(ROOT))

from fluxcore.dataroots import display_path  # noqa: E402
from fluxcore.errors import FluxcoreError  # noqa: E402
from fluxcore.jobs import JobManager, read_run_name  # noqa: E402


def _ensure_navigation() -> None:
    """Route through app.py's ``st.navigation`` even on a fresh server.

    Streamlit decides at the first script run of a server process whether the app uses the
    legacy ``pages/`` directory (it does as long as no ``st.navigation`` call has been seen):
    a first visitor who opens ``/sites`` directly would get the page without app.py (no
    layout, legacy menu listing every file) for the whole process. When a page finds itself
    run that way, switch the flag and rerun: app.py then runs and routes to the same page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - other Streamlit versions
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_ensure_navigation()

#: Real FLUXNET2015 data next to the project (never copied into it).
REAL_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
MAX_UPLOAD_MB = 200
MAX_DATASETS = 3


def runs_dir() -> Path:
    """Run store folder: ``$FLUXCORE_RUNS_DIR`` or ``runs/`` in the project."""
    return Path(os.environ.get("FLUXCORE_RUNS_DIR", ROOT / "runs"))


def uploads_dir() -> Path:
    p = Path(os.environ.get("FLUXCORE_UPLOADS_DIR", runs_dir() / "_uploads"))
    p.mkdir(parents=True, exist_ok=True)
    return p


def asset_url() -> str:
    """URL prefix of ``assets/`` as served by Streamlit (``static -> assets``)."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/app/static" if base else "/app/static"


# ---------------------------------------------------------------------------- cached calls
@st.cache_resource(show_spinner=False)
def _data_registry() -> dict:
    """Process-wide registry of datasets being loaded / loaded (one per source)."""
    return {"lock": threading.Lock(), "futures": {},
            "pool": ThreadPoolExecutor(max_workers=2, thread_name_prefix="fluxcore-data")}


def _load(src: str):
    from fluxcore.sources import load_dataset

    ds = load_dataset(src)
    fp = ds.fingerprint()
    # the data of a loaded dataset never change: remember the fingerprint (saves hashing the
    # daily table at every run submission)
    ds.fingerprint = lambda: fp  # type: ignore[method-assign]
    return ds


def _warm_imports() -> None:
    """Import the heavy modules (learners pull in torch) before a page needs them."""
    from fluxcore import heterogeneity, loso, plots  # noqa: F401
    from fluxcore.config import available_learner_names

    available_learner_names()


def dataset_future(src: str, retry: bool = False) -> Future:
    """Start loading ``src`` in the background (once per server process) and return its future.

    Pages that can show something without the data (the Overview) poll ``future.done()``
    instead of blocking. A failed load is kept (its error is shown at once) unless ``retry``.
    At most :data:`MAX_DATASETS` sources are kept in memory (the oldest is dropped).
    """
    reg = _data_registry()
    with reg["lock"]:
        futs: dict = reg["futures"]
        fut = futs.get(src)
        if fut is None or (retry and fut.done() and fut.exception() is not None):
            fut = reg["pool"].submit(_load, src)
            futs[src] = fut
            if "warm" not in reg:  # heavy imports after the first load, not competing with it
                reg["warm"] = True
                fut.add_done_callback(lambda _f: reg["pool"].submit(_warm_imports))
            while len(futs) > MAX_DATASETS:
                futs.pop(next(k for k in futs if k != src))
        return fut


def dataset(src: str):
    """The loaded dataset of ``src`` (waits with a spinner if it is still loading).

    Raises the loader's error (:class:`fluxcore.errors.DataError` for bad input).
    """
    fut = dataset_future(src)
    if not fut.done():
        with st.spinner("Loading data…"):
            return fut.result()
    return fut.result()


@st.cache_data(show_spinner=False, max_entries=8)
def site_table(src: str) -> pd.DataFrame:
    """Plain site catalogue (no geometry) with ``YEARS`` of data, for maps and tables."""
    from fluxcore.maps import years_of_data

    ds = dataset(src)
    s = pd.DataFrame(ds.sites.drop(columns="geometry"))
    s = s[s["SITE_ID"].isin(ds.site_ids)].reset_index(drop=True)
    s["YEARS"] = s["SITE_ID"].map(years_of_data(ds.daily)).fillna(0).astype(int)
    return s


@st.cache_resource(show_spinner=False)
def job_manager(path: str) -> JobManager:
    """One background job manager per server process and run store."""
    return JobManager(path, max_running=1)


@st.cache_data(show_spinner=False, max_entries=32)
def _runs_table(path: str, stamp: tuple) -> pd.DataFrame:
    from fluxcore.loso import list_runs

    return list_runs(path)


def _store_stamp(path: str) -> tuple:
    d = Path(path)
    if not d.is_dir():
        return ()
    files = list(d.glob("*/manifest.json")) + list(d.glob("*/name.txt"))
    return (d.stat().st_mtime_ns,) + tuple(sorted((str(m.relative_to(d)), m.stat().st_mtime_ns) for m in files))


def runs_table(path: str) -> pd.DataFrame:
    """``fluxcore.loso.list_runs`` plus each run's ``name`` (None if unnamed), re-read whenever
    a run folder, manifest or name changes."""
    table = _runs_table(path, _store_stamp(path)).copy()
    table["name"] = [read_run_name(p) for p in table["path"]] if len(table) else []
    return table


@st.cache_data(show_spinner=False, max_entries=8)
def _fold_history(path: str, stamp: tuple) -> dict:
    from fluxcore.presets import fold_seconds_history

    return fold_seconds_history(path)


def fold_history(path: str) -> dict:
    """Seconds per fold measured by the store's finished runs (:mod:`fluxcore.presets`)."""
    return _fold_history(path, _store_stamp(path))


@st.cache_resource(show_spinner="Loading run…", max_entries=6)
def run_result(path: str, stamp: float):
    """``fluxcore.loso.load_run`` (``stamp`` = manifest mtime, to reload a changed run)."""
    from fluxcore.loso import load_run

    return load_run(path)


def load_run_cached(path: str | Path):
    p = Path(path)
    m = p / "manifest.json"
    return run_result(str(p), m.stat().st_mtime if m.exists() else 0.0)


@st.cache_data(show_spinner=False, max_entries=2)
def carbonfluxbench(folder: str) -> pd.DataFrame:
    """CarbonFluxBench per-site scores (:func:`fluxcore.anchors.load_carbonfluxbench`)."""
    from fluxcore.anchors import load_carbonfluxbench

    return load_carbonfluxbench(folder)


@st.cache_data(show_spinner="Computing site distances…", max_entries=16)
def distances(run_path: str, stamp: float, src: str) -> pd.DataFrame:
    """Heterogeneity distances of a run's test sites (written next to the run)."""
    from fluxcore.heterogeneity import run_distances

    p = Path(run_path) / "distances.parquet"
    if p.is_file() and p.stat().st_mtime >= stamp:
        return pd.read_parquet(p)
    d = run_distances(load_run_cached(run_path), dataset(src))
    try:
        tmp = p.with_suffix(".tmp.parquet")
        d.to_parquet(tmp, index=False)
        os.replace(tmp, p)
    except OSError:
        pass
    return d


# ---------------------------------------------------------------------------- session state
def data_src() -> str:
    return st.session_state.setdefault("data_src", os.environ.get("FLUXCORE_DATA", "demo"))


def current_dataset():
    """The dataset chosen on the Data page (demo by default); None with an error shown."""
    src = data_src()
    try:
        return dataset(src)
    except FluxcoreError as exc:
        st.error(f"The data source could not be loaded: {exc}")
        st.page_link("pages/data.py", label="Choose another data source", icon=":material/database:")
        return None


def selected_sites() -> list[str]:
    return list(st.session_state.setdefault("selected_sites", []))


def set_selected_sites(ids) -> None:
    st.session_state["selected_sites"] = sorted({str(s) for s in ids})


#: Attribution required by the FLUXNET2015 CC-BY-4.0 licence.
FLUXNET_ATTRIBUTION = (
    "FLUXNET2015 data, licence CC-BY-4.0: Pastorello, G. et al. (2020) The FLUXNET2015 dataset and the "
    "ONEFlux processing pipeline for eddy covariance data. *Scientific Data* 7, 225 "
    "(doi:10.1038/s41597-020-0534-3). Data of the FLUXNET network's site teams.")


def is_fluxnet(name: str | None, source: str | None, layout: str | None = None) -> bool:
    """Whether data come from FLUXNET (by its folder/file names or its layout)."""
    text = " ".join(str(x or "") for x in (name, source, layout)).lower()
    return "fluxnet" in text or "flx_" in text or "amf_" in text


def attribution(synthetic: bool, name: str | None, source: str | None, layout: str | None = None) -> None:
    """The FLUXNET CC-BY-4.0 attribution under pages that show real FLUXNET data."""
    if not synthetic and is_fluxnet(name, source, layout):
        st.caption(FLUXNET_ATTRIBUTION)


def dataset_attribution(ds) -> None:
    if ds is not None:
        attribution(bool(ds.synthetic), ds.name, str(ds.source),
                    str((getattr(ds, "meta", None) or {}).get("layout", "")))


def dataset_banner(ds) -> None:
    """One line naming the data in use; synthetic data is always flagged, FLUXNET attributed."""
    if ds is None:
        return
    if ds.synthetic:
        st.warning(f"**SYNTHETIC** data: {ds.label}. Numbers illustrate the method, they are "
                   "not observations. Choose real data on the **Data** page.", icon=":material/science:")
    else:
        shown = display_path(ds.source) if ds.source else ds.name  # never an absolute server path
        st.caption(f"Data: **{ds.name}** from `{shown}`: {ds.n_sites} sites, {ds.n_site_days:,} site-days.")
        dataset_attribution(ds)


def require_dataset():
    """The dataset in use with its banner shown; stops the page when it cannot be loaded."""
    ds = current_dataset()
    if ds is None:
        st.stop()
    dataset_banner(ds)
    return ds


def run_label(row: pd.Series) -> str:
    """How a run is listed: its name first (else its key), then what it computed."""
    created = str(row.get("created") or "")[:16].replace("T", " ")
    name = row.get("name") if isinstance(row.get("name"), str) and row.get("name") else None
    head = f"{name} ({str(row['key'])[:8]})" if name else str(row["key"])
    status = "nothing computed" if row.get("n_folds") == 0 else row["status"]
    return (f"{head} · {status} · {row['data']} · {row['learners']} · {row['targets']} · "
            f"{row['n_sites']} sites · {created}")


def request_run(path: str | Path) -> None:
    """Ask the next Results/Heterogeneity page to open this run (e.g. a *Show results* button)."""
    st.session_state["run_path"] = str(path)
    st.session_state["_run_request"] = str(path)


def pick_run(label: str = "Run", done_only: bool = True, key: str = "run_pick") -> str | None:
    """Select box of stored runs; remembers the choice in ``session_state['run_path']``.

    A run asked for with :func:`request_run` (or restored from the URL) is selected even when
    the select box still holds an earlier choice.
    """
    table = runs_table(str(runs_dir()))
    if done_only and len(table):
        # runs that computed nothing (every fold skipped) stay listed: Results says why
        table = table[(table["status"] == "done") | (table["n_folds"] == 0)]
    if not len(table):
        st.info("No finished run in the store yet. Start one on the **Train** page.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return None
    paths = table["path"].tolist()
    want = st.session_state.get("run_path")
    asked = st.session_state.pop("_run_request", None)
    if asked in paths:
        st.session_state[key] = asked
    elif st.session_state.get(key) not in paths:
        st.session_state.pop(key, None)
    index = paths.index(want) if want in paths else 0
    labels = {r["path"]: run_label(r) for _, r in table.iterrows()}
    path = st.selectbox(label, paths, index=index, format_func=lambda p: labels.get(p, p), key=key)
    st.session_state["run_path"] = path
    return path


def reset_on_change(scope: str, token: str, keys) -> None:
    """Forget the widget values ``keys`` when ``token`` (e.g. the run shown) changed since the
    last call with this ``scope``: filters chosen for one run do not carry over to another."""
    marker = f"_shown_{scope}"
    if st.session_state.get(marker) != token:
        for k in keys:
            st.session_state.pop(k, None)
        st.session_state[marker] = token


# ---------------------------------------------------------------------------- URL state
def source_to_url(src: str) -> str | None:
    """How a data source is written in the page's URL (no absolute server path), or None."""
    from fluxcore.dataroots import data_roots, display_path, resolve_server_path

    if src == "demo":
        return "demo"
    p = Path(src)
    try:
        up = uploads_dir().resolve()
        rp = p.resolve()
    except OSError:
        return None
    if up in rp.parents:
        return "upload:" + rp.relative_to(up).as_posix()
    roots = data_roots()
    shown = display_path(rp, roots)
    try:  # only a path the server resolves back to the same place (i.e. below a data root)
        return shown if resolve_server_path(shown, roots) == rp else None
    except FluxcoreError:
        return None


def source_from_url(text: str) -> str | None:
    """The data source named in a URL, or None when it is not one this server offers."""
    from fluxcore.dataroots import resolve_server_path

    text = str(text or "").strip()
    if not text:
        return None
    if text == "demo":
        return "demo"
    if text.startswith("upload:"):
        up = uploads_dir().resolve()
        cand = (up / text[len("upload:"):]).resolve()
        return str(cand) if up in cand.parents and cand.is_file() else None
    try:
        return str(resolve_server_path(text))
    except FluxcoreError:
        return None


def restore_from_url() -> None:
    """Once per browser session: take the data source, selected sites and run from the URL
    (``?data=...&sites=A,B&run=KEY``), so that a page reload keeps them."""
    if st.session_state.get("_url_restored"):
        return
    st.session_state["_url_restored"] = True
    qp = st.query_params
    if "data" in qp:
        src = source_from_url(qp.get("data"))
        if src is None:
            st.session_state["_url_problem"] = (f"The data source in the address ({qp.get('data')}) is not "
                                                "offered by this server; the default data are shown.")
        else:
            st.session_state["data_src"] = src
    if qp.get("sites"):
        set_selected_sites(s for s in str(qp.get("sites")).split(",") if s.strip())
    run = str(qp.get("run") or "")
    if run and run.replace("-", "").replace("_", "").isalnum():
        p = runs_dir() / run
        if (p / "manifest.json").is_file():
            request_run(p)


def sync_url() -> None:
    """Write the session's data source, selected sites and run into the page's URL."""
    want: dict[str, str] = {}
    src = source_to_url(data_src())
    if src:
        want["data"] = src
    sel = selected_sites()
    if sel:
        want["sites"] = ",".join(sel)
    run = st.session_state.get("run_path")
    if run:
        want["run"] = Path(run).name
    qp = st.query_params
    current = {k: qp.get(k) for k in ("data", "sites", "run") if k in qp}
    if current != want:
        for k in ("data", "sites", "run"):
            if k in want:
                qp[k] = want[k]
            elif k in qp:
                del qp[k]


def show_error(exc: BaseException, what: str) -> None:
    """A clear message (no traceback) for fluxcore errors; details folded for others."""
    if isinstance(exc, FluxcoreError):
        st.error(f"{what}: {exc}")
    else:
        st.error(f"{what}: {type(exc).__name__}: {exc}")
        with st.expander("Details"):
            import traceback

            st.code("".join(traceback.format_exception(exc)))
