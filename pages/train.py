"""Train: choose learners, targets, training pool and main hyperparameters; run
leave-one-site-out in the background (progress, time left, cancel)."""

from __future__ import annotations

import streamlit as st

from fluxcore.config import RunConfig, learner_catalogue, resolve_learner_params, test_sites
from fluxcore.errors import FluxcoreError
from fluxcore.jobs import format_seconds, plain_learner_name
from fluxcore.presets import QUICK, apply_preset, expected_duration
from fluxcore.variables import ZONES
from pages import _common as common

#: Every learner and variant with its description and main hyperparameters, from the
#: learners' own metadata (a learner registered by a plug-in appears here too).
CATALOGUE = {row["name"]: row for row in learner_catalogue()}
ORDER = ("lstm", "rf", "svm", "mlr")
PACES = {"quick": QUICK.label, "full": "Full settings (the paper's; minutes to hours)"}


def _label(name: str) -> str:
    row = CATALOGUE[name]
    return f"{name}: {row['description']}" if row["kind"] == "learner" else f"{name} (variant)"


st.title("Train: leave-one-site-out")
common.sync_url()  # the address keeps data source, selection and run (reload-safe)
ds = common.require_dataset()
src = common.data_src()
jm = common.job_manager(str(common.runs_dir()))

# ------------------------------------------------------------------ what to run
plain = sorted((n for n, r in CATALOGUE.items() if r["kind"] == "learner"),
               key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
variants = [n for n, r in CATALOGUE.items() if r["kind"] == "variant"]
left, right = st.columns([3, 2])
with left:
    pace = st.radio("Pace", list(PACES), index=1, format_func=PACES.get, key="preset", horizontal=True,
                    help=QUICK.description)
    quick = pace == "quick"
    # pills, not a multiselect: every learner and whether it is chosen stays visible (a
    # multiselect box hides its chips behind "+N" once four or more are chosen); the pills
    # wrap onto several lines instead of scrolling sideways (Streamlit's default), and the
    # fuzzy variants get a box of their own so that the learners fit in view
    st.html("<style>div[data-testid='stButtonGroup'] > div {flex-wrap: wrap; overflow-x: visible;}</style>")
    chosen = st.pills(
        "Learners", plain, selection_mode="multi", default=[n for n in ("mlr", "rf") if n in CATALOGUE],
        key="learners", format_func=_label,
        help="Click a learner to add or remove it.") or []
    chosen_variants = st.multiselect(
        "Fuzzy variants (optional)", variants, key="learner_variants", format_func=_label,
        help="Fuzzy variants weight training sites by their similarity to the held-out site.") if variants else []
    learners = list(chosen) + list(chosen_variants)
    if learners:
        st.caption(f"Chosen ({len(learners)}): " + ", ".join(f"**{n}** ({plain_learner_name(n)})" for n in learners))
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
    if quick:
        pool = "zone"
        st.caption("Training pool of each fold: **other sites of the same zone** (quick preset).")
    else:
        pool = st.radio("Training pool of each fold", ["all", "zone"], key="pool", horizontal=True,
                        format_func={"all": "all other sites", "zone": "other sites of the same zone"}.get)
with right:
    st.markdown("**Main hyperparameters**")
    if quick:
        st.caption(QUICK.description)
    seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="seed",
                               help="same seed + same settings = same numbers"))
    params: dict = {}
    for lrn in learners:
        row = CATALOGUE[lrn]
        if row["kind"] != "learner" or not row["main_params"] or quick:
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
    if quick:
        config = apply_preset(config, QUICK)
    try:
        config.validate(ds)
    except FluxcoreError as exc:
        problem = str(exc)
        config = None

expected = None
if config is not None:
    n_test = len(test_sites(config, ds))
    n_folds = n_test * len(learners)
    expected = expected_duration(learners, n_test, preset="quick" if quick else None, data_name=ds.name,
                                 history=common.fold_history(str(common.runs_dir())))
    st.info(f"{n_test} test site(s) × {len(learners)} learner(s) = **{n_folds} folds**; "
            f"each fold trains on the pool without its test site. **Expected duration: about "
            f"{format_seconds(expected.seconds)}** ({expected.source}).", icon=":material/info:")
else:
    st.warning(problem, icon=":material/warning:")

auto_name = None
if config is not None:
    where = ", ".join(zones) if zones else (f"{len(sites)} selected sites" if sites else "all sites")
    auto_name = f"{'QUICK · ' if quick else ''}{', '.join(learners)} · {', '.join(targets)} · {where}"
given = st.text_input("Run name (optional)", key="run_name", max_chars=80, placeholder=auto_name or "",
                      help="Runs are listed by name on Results and Heterogeneity; the name is not part of the "
                           "run's settings.")
run_name = (given or "").strip() or auto_name
if quick and run_name and "quick" not in run_name.lower():
    run_name = f"QUICK · {run_name}"

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
            common.request_run(stored["path"])
            st.switch_page("pages/results.py")
    elif stored is not None:
        st.caption(f"A run with these settings is in the store with status **{stored['status']}** "
                   f"({stored['folds_done']}/{stored['n_folds']} folds); starting it resumes it.")


if st.button("Start run", type="primary", disabled=config is None, key="start",
             help="The run goes on in the background; you can use the other pages meanwhile."):
    # submitted from this script run, i.e. with the widget values shown on the page
    job = jm.submit(config, ds, run_dir=run_dir, name=run_name,
                    expected_seconds=None if expected is None else expected.seconds,
                    learner_seconds=None if expected is None else expected.per_fold)
    st.session_state["job_keys"] = [k for k in st.session_state.get("job_keys", []) if k != job.key] + [job.key]


# ------------------------------------------------------------------ progress
def _job_panel(job) -> None:
    snap = job.snapshot()
    status = snap["status"]
    name = job.run_dir.name if job.run_dir is not None else job.key
    what = f"{', '.join(plain_learner_name(x) for x in job.learners)} · {', '.join(job.config.targets)}"
    title = f"**{snap['name']}** (`{name[:8]}`): {what}" if snap["name"] else f"Run `{name}`: {what}"
    with st.container(border=True):
        st.markdown(title)
        if status in ("queued", "running"):
            total = snap["total"] or 0
            left = snap["eta_seconds"]
            left_text = "estimating" if left is None else f"about {format_seconds(left)} left"
            text = f"{snap['progress_text']} · {left_text}"
            if total:
                text += f" · {snap['done']} of {total} folds"
            st.progress(job.weighted_fraction, text=text)
            st.button("Cancel run", key=f"cancel_{job.key}", on_click=jm.cancel, args=(job.key,))
        elif status == "done":
            st.success(f"Finished in {format_seconds(snap['elapsed'])}: {snap['total']} folds.",
                       icon=":material/check_circle:")
            if snap["warning"]:
                st.warning(snap["warning"], icon=":material/warning:")
            if snap["run_dir"] and st.button("Show results", key=f"show_{job.key}", icon=":material/scatter_plot:"):
                common.request_run(snap["run_dir"])
                st.switch_page("pages/results.py")
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
        st.dataframe(table[["name", "key", "status", "data", "learners", "targets", "n_sites", "folds_done",
                            "n_folds", "created"]], hide_index=True, width="stretch")
    else:
        st.caption("none yet")
