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

from fluxcore.errors import FluxcoreError  # noqa: E402
from fluxcore.jobs import JobManager  # noqa: E402


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


def runs_table(path: str) -> pd.DataFrame:
    """``fluxcore.loso.list_runs``, re-read whenever a run folder or manifest changes."""
    d = Path(path)
    stamp: tuple = ()
    if d.is_dir():
        stamp = (d.stat().st_mtime_ns,) + tuple(sorted(
            (m.parent.name, m.stat().st_mtime_ns) for m in d.glob("*/manifest.json")))
    return _runs_table(path, stamp)


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


def dataset_banner(ds) -> None:
    """One line naming the data in use; synthetic data is always flagged."""
    if ds is None:
        return
    if ds.synthetic:
        st.warning(f"**SYNTHETIC** data: {ds.label}. Numbers illustrate the method, they are "
                   "not observations. Choose real data on the **Data** page.", icon=":material/science:")
    else:
        st.caption(f"Data: **{ds.name}** from `{ds.source}`: {ds.n_sites} sites, {ds.n_site_days:,} site-days.")


def require_dataset():
    """The dataset in use with its banner shown; stops the page when it cannot be loaded."""
    ds = current_dataset()
    if ds is None:
        st.stop()
    dataset_banner(ds)
    return ds


def run_label(row: pd.Series) -> str:
    created = str(row.get("created") or "")[:16].replace("T", " ")
    return (f"{row['key']} · {row['status']} · {row['data']} · {row['learners']} · {row['targets']} · "
            f"{row['n_sites']} sites · {created}")


def pick_run(label: str = "Run", done_only: bool = True, key: str = "run_pick") -> str | None:
    """Select box of stored runs; remembers the choice in ``session_state['run_path']``."""
    table = runs_table(str(runs_dir()))
    if done_only and len(table):
        table = table[table["status"] == "done"]
    if not len(table):
        st.info("No finished run in the store yet. Start one on the **Train** page.")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return None
    paths = table["path"].tolist()
    want = st.session_state.get("run_path")
    index = paths.index(want) if want in paths else 0
    labels = {r["path"]: run_label(r) for _, r in table.iterrows()}
    path = st.selectbox(label, paths, index=index, format_func=lambda p: labels.get(p, p), key=key)
    st.session_state["run_path"] = path
    return path


def show_error(exc: BaseException, what: str) -> None:
    """A clear message (no traceback) for fluxcore errors; details folded for others."""
    if isinstance(exc, FluxcoreError):
        st.error(f"{what}: {exc}")
    else:
        st.error(f"{what}: {type(exc).__name__}: {exc}")
        with st.expander("Details"):
            import traceback

            st.code("".join(traceback.format_exception(exc)))
