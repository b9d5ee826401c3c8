"""Train: choose learners, targets, training pool and main hyperparameters; run
leave-one-site-out in the background (progress, time left, cancel)."""

from __future__ import annotations

import streamlit as st

from fluxcore.config import RunConfig, learner_catalogue, resolve_learner_params, test_sites
from fluxcore.errors import FluxcoreError
from fluxcore.jobs import format_seconds
from fluxcore.learners import make_learner
from fluxcore.variables import ZONES
from pages import _common as common

#: Every learner and variant with its description and main hyperparameters, from the
#: learners' own metadata (a learner registered by a plug-in appears here too).
CATALOGUE = {row["name"]: row for row in learner_catalogue()}
ORDER = ("lstm", "rf", "svm", "mlr")


def _label(name: str) -> str:
    row = CATALOGUE[name]
    return f"{name}: {row['description']}" if row["kind"] == "learner" else f"{name} (variant): {row['description']}"


st.title("Train: leave-one-site-out")
ds = common.require_dataset()
src = common.data_src()
jm = common.job_manager(str(common.runs_dir()))

# ------------------------------------------------------------------ what to run
plain = sorted((n for n, r in CATALOGUE.items() if r["kind"] == "learner"),
               key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
variants = [n for n, r in CATALOGUE.items() if r["kind"] == "variant"]
left, right = st.columns([3, 2])
with left:
    learners = st.multiselect(
        "Learners", plain + variants, default=[n for n in ("mlr", "rf") if n in CATALOGUE],
        key="learners", format_func=_label,
        help="Fuzzy variants weight training sites by their similarity to the held-out site.")
    targets = st.multiselect("Targets", ds.targets, default=[t for t in ("GPP", "ER") if t in ds.targets] or ds.targets[:1],
                             key="targets", help="GPP: gross primary production; ER: ecosystem respiration; "
                             "NEE = ER - GPP [gC m-2 d-1]")
    selection = [s for s in common.selected_sites() if s in set(ds.site_ids)]
    scopes = (["selected"] if selection else []) + ["zones", "all"]
    scope_label = {"selected": f"the {len(selection)} selected sites", "zones": "all sites of some aridity zones",
                   "all": f"every site ({ds.n_sites})"}
    scope = st.radio("Test sites (each is held out once)", scopes, format_func=scope_label.get, key="scope",
                     horizontal=True)
    zones = None
    sites = None
    if scope == "selected":
        sites = selection
    elif scope == "zones":
        present = [z for z, n in ds.zone_counts().items() if n and z in ZONES]
        zones = st.multiselect("Aridity zones", present, default=present[:1], key="train_zones")
    pool = st.radio("Training pool of each fold", ["all", "zone"], key="pool", horizontal=True,
                    format_func={"all": "all other sites", "zone": "other sites of the same zone"}.get)
with right:
    st.markdown("**Main hyperparameters**")
    seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="seed",
                               help="same seed + same settings = same numbers"))
    params: dict = {}
    for lrn in learners:
        row = CATALOGUE[lrn]
        if row["kind"] != "learner" or not row["main_params"]:
            continue
        defaults = resolve_learner_params(lrn, {}, seed)
        helps = row["main_params"]
        with st.expander(f"{lrn}", expanded=False):
            p = {}
            for name in helps:
                if name not in defaults:
                    continue
                d = defaults[name]
                k = f"hp_{lrn}_{name}"
                if isinstance(d, bool):
                    p[name] = st.checkbox(name, value=d, key=k, help=helps.get(name))
                elif isinstance(d, int) or (d is None and name == "max_depth"):
                    v = st.number_input(name, min_value=0, value=int(d or 0), step=1, key=k, help=helps.get(name))
                    p[name] = None if (name == "max_depth" and v == 0) else int(v)
                elif isinstance(d, float):
                    p[name] = float(st.number_input(name, min_value=0.0, value=float(d), key=k, format="%.4g",
                                                    help=helps.get(name)))
            params[lrn] = {k2: v for k2, v in p.items() if v != defaults.get(k2)}
    params = {k: v for k, v in params.items() if v}

config = None
problem = None
if not learners:
    problem = "Choose at least one learner."
elif not targets:
    problem = "Choose at least one target."
elif scope == "zones" and not zones:
    problem = "Choose at least one aridity zone."
else:
    config = RunConfig(data=src, learners=list(learners), targets=list(targets), sites=sites, zones=zones,
                       pool=pool, params=params, seed=seed)
    try:
        config.validate(ds)
    except FluxcoreError as exc:
        problem = str(exc)
        config = None

if config is not None:
    n_test = len(test_sites(config, ds))
    n_folds = n_test * len(learners)
    slow = (" Neural networks take minutes on a CPU." if any(CATALOGUE[n]["base"] in ("lstm",) or
            make_learner(CATALOGUE[n]["base"]).get_tag("fine_tune", False) for n in learners) else "")
    st.info(f"{n_test} test site(s) × {len(learners)} learner(s) = **{n_folds} folds**; "
            f"each fold trains on the pool without its test site.{slow}", icon=":material/info:")
else:
    st.warning(problem, icon=":material/warning:")

stored = None
run_dir = None
if config is not None:
    try:
        from fluxcore.loso import prepare_run

        _rc, _ds, run_dir = prepare_run(config, dataset=ds, runs_dir=common.runs_dir())
        table = common.runs_table(str(common.runs_dir()))
        row = table[table["key"] == run_dir.name]
        stored = None if row.empty else row.iloc[0]
    except Exception:  # noqa: BLE001 - only a hint; Start run reports real problems
        stored = None
    if stored is not None and stored["status"] == "done":
        st.success(f"This run is already in the store (`{stored['key']}`): starting it shows the stored results "
                   "at once.", icon=":material/inventory_2:")
        if st.button("Show stored results", key="show_stored"):
            st.session_state["run_path"] = stored["path"]
            st.switch_page("pages/results.py")
    elif stored is not None:
        st.caption(f"A run with these settings is in the store with status **{stored['status']}** "
                   f"({stored['folds_done']}/{stored['n_folds']} folds); starting it resumes it.")


if st.button("Start run", type="primary", disabled=config is None, key="start",
             help="The run goes on in the background; you can use the other pages meanwhile."):
    # submitted from this script run, i.e. with the widget values shown on the page
    job = jm.submit(config, ds, run_dir=run_dir)
    st.session_state["job_keys"] = [k for k in st.session_state.get("job_keys", []) if k != job.key] + [job.key]


# ------------------------------------------------------------------ progress
def _job_panel(job) -> None:
    snap = job.snapshot()
    status = snap["status"]
    name = job.run_dir.name if job.run_dir is not None else job.key
    title = f"Run `{name}`: {', '.join(job.config.learners)} · {', '.join(job.config.targets)}"
    with st.container(border=True):
        st.markdown(title)
        if status in ("queued", "running"):
            total = snap["total"] or 0
            text = (f"{snap['done']} / {total} folds · time left {format_seconds(snap['eta_seconds'])} · "
                    f"{snap['message']}") if total else snap["message"]
            st.progress(snap["fraction"], text=text)
            st.button("Cancel run", key=f"cancel_{job.key}", on_click=jm.cancel, args=(job.key,))
        elif status == "done":
            st.success(f"Finished in {format_seconds(snap['elapsed'])}: {snap['total']} folds.",
                       icon=":material/check_circle:")
            if snap["run_dir"]:
                st.session_state["run_path"] = snap["run_dir"]
            st.page_link("pages/results.py", label="Show results", icon=":material/scatter_plot:")
        elif status == "cancelled":
            st.info("Cancelled. Finished folds are kept; starting the same run again resumes it.")
        else:
            st.error(f"The run failed: {snap['error']}", icon=":material/error:")
            if job.traceback:
                with st.expander("Technical details"):
                    st.code(job.traceback)


@st.fragment(run_every=1.0)
def _poll() -> None:
    keys = st.session_state.get("job_keys", [])
    jobs = [j for j in (jm.get(k) for k in reversed(keys)) if j is not None]
    for job in jobs[:3]:
        _job_panel(job)
    if not any(j.status in ("queued", "running") for j in jobs):
        st.rerun()  # back to a page that does not poll


keys = st.session_state.get("job_keys", [])
my_jobs = [j for j in (jm.get(k) for k in reversed(keys)) if j is not None]
if any(j.status in ("queued", "running") for j in my_jobs):
    st.subheader("Your runs")
    _poll()
elif my_jobs:
    st.subheader("Your runs")
    for j in my_jobs[:3]:
        _job_panel(j)

others = [j for j in jm.active() if j.key not in keys]
if others:
    st.caption(f"{len(others)} run(s) started by other users are in progress on this server; "
               "runs are queued and computed one at a time.")

with st.expander("Runs in the store"):
    table = common.runs_table(str(common.runs_dir()))
    if len(table):
        st.dataframe(table[["key", "status", "data", "learners", "targets", "n_sites", "folds_done", "n_folds",
                            "created"]], hide_index=True, width="stretch")
    else:
        st.caption("none yet")
