"""Fast leave-one-site-out for :class:`~fluxcore.learners.rf.RFLearner` (strategy ``rf_site_oob``).

Site-level out-of-bag random forest (approximation, no leakage): in each *round* the test
sites are shuffled into groups and one tree is grown per group on the pool without that
group's sites; a site is predicted only by trees that never saw it. After ``trees_per_site``
rounds every site has ``trees_per_site`` out-of-bag trees, each trained on about
``(1 - 1/n_groups)`` of the sites. Cost: ``groups * trees_per_site`` trees instead of
``n_sites * n_estimators``: ``min(n_groups, tests)`` groups per round (:func:`groups_per_round`;
``scaled_groups`` draws fewer, larger groups for small selections). Each tree grows only the
branches its group's test rows reach (``grow``, :mod:`fluxcore.learners.lazytree`, compiled),
so the cost follows the number of test sites. Targets whose missing rows differ get one tree
each per group and round, as the per-fold learner then grows one forest per target;
``merge_targets`` (off by default: it lowers ER skill) lets nearly equal masks share
multi-output trees (:func:`merged_target_groups`). Each finished round is a checkpoint unit
(:class:`fluxcore.strategies.base.Checkpoint`): a killed run resumes after the last round
stored, with the same predictions.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..params import Boolean, Interval, Options
from ..strategies.base import (
    Checkpoint,
    LocalMapper,
    Pools,
    Strategy,
    prepare_arrays,
    register_strategy,
    split_groups,
    spread_groups,
    universes,
)
from ._util import mask_groups
from .lazytree import HAVE_NUMBA, lazy_tree_predict_sample
from .rf import tree_rows

__all__ = ["rf_site_oob", "RFSiteOOB", "site_profiles", "groups_per_round", "uses_spread_groups"]


def groups_per_round(n_tests: int, n_groups: int, scaled: bool = True, tests_per_group: int = 3) -> int:
    """Groups (trees) per round for ``n_tests`` test sites of a universe.

    ``n_groups`` is the number of groups when every site of the universe is a test site (W:
    204 of 204, 10 groups of about 20 random sites, so a tree leaves out about 10 % of the
    sites). Never more groups than ``n_groups`` or than test sites.

    Without ``scaled`` (the default of :func:`rf_site_oob`): ``min(n_groups, n_tests)`` groups, so a selection of
    fewer than ``n_groups`` test sites gets one group per site (every tree leaves out one site:
    the per-fold forest itself) and the 12 arid towers get 10 random groups, as in the previous
    release. The lazy trees make this affordable: a tree grows only the branches its group's
    rows reach, so the cost follows the test rows, not the number of trees (the 12 arid towers:
    ``benchmarks/README.md``, seventh session).

    With ``scaled`` a selection of few test sites gets fewer groups:
    ``ceil(n_tests / tests_per_group)``, at most ``tests_per_group`` test sites per group,
    drawn as spread groups (:func:`uses_spread_groups`). This was the default while trees were
    grown whole (issue 21, second to sixth session): four groups of three far-apart arid towers
    cost less than ten groups, but every tree then leaves out two more sites of the zone, and
    with the smaller row samples of that time the zone lost skill against the previous release
    (paired per-site R² GPP -0.013, ER -0.021 over five seeds). Larger groups lose more: six
    arid towers per group lowered the paired GPP R² by 0.06.
    """
    n_tests, n_groups = int(n_tests), max(int(n_groups), 1)
    g = n_groups
    if scaled:
        g = -(-n_tests // max(int(tests_per_group), 1))
    return max(1, min(g, n_groups, n_tests))


def uses_spread_groups(n_tests: int, n_groups: int, scaled: bool = True, tests_per_group: int = 3) -> bool:
    """Whether ``grouping="auto"`` draws spread groups: when the ``tests_per_group`` rule of a
    small selection sets the number of groups (fewer than ``n_groups``), i.e. every group holds
    at most ``tests_per_group`` test sites."""
    return bool(scaled) and groups_per_round(n_tests, n_groups, True, tests_per_group) < min(
        max(int(n_groups), 1), int(n_tests))


def merged_target_groups(finite: np.ndarray, tolerance: float = 0.01) -> list[list[int]]:
    """Targets fitted by the same multi-output trees, given their finite-row masks (n, t).

    Targets with identical masks share trees (as :class:`fluxcore.learners.rf.RFLearner`).
    With ``tolerance > 0``, all targets also share trees (grown on the rows where every target
    is finite) when that common set keeps at least ``1 - tolerance`` of each target's finite
    rows: on FLUXNET2015, GPP and ER differ in 111 of 365,696 rows, and two single-output
    trees cost twice one two-output tree. Not the default: a two-output split serves both
    targets at once and lowered the ER skill of the 204-tower forest (median per-site R²
    0.435 -> 0.423, r² 0.697 -> 0.667, with 1.5 times larger row samples).
    """
    groups = mask_groups(finite)
    if len(groups) > 1 and tolerance > 0 and finite.shape[1] > 1:
        common = finite.all(axis=1).sum()
        own = finite.sum(axis=0)
        if np.all(own > 0) and np.all(common >= (1.0 - tolerance) * own):
            return [list(range(finite.shape[1]))]
    return groups


def rf_site_oob(
    X: np.ndarray,
    Y: np.ndarray,
    sites: np.ndarray,
    pools: Pools,
    *,
    trees_per_site: int = 100,
    n_groups: int = 10,
    scaled_groups: bool = False,
    tests_per_group: int = 3,
    grouping: str = "auto",
    merge_targets: float = 0.0,
    max_samples: float | int = 0.1,
    min_tree_rows: int = 5000,
    max_tree_rows: int | None = 40000,
    min_samples_leaf: int = 5,
    max_features: float = 0.5,
    max_depth: int | None = None,
    splitter: str = "best",
    grow: str = "auto",
    random_state: int = 0,
    n_jobs: int = 2,
    n_processes: int | None = None,
    progress=None,
    checkpoint: Checkpoint | None = None,
    mapper=None,
) -> dict[str, np.ndarray]:
    """Site-level out-of-bag random forest for all folds at once.

    In each of ``trees_per_site`` rounds, the test sites of a universe (a test site together
    with its pool) are shuffled into groups (:func:`groups_per_round`); for every group one
    CART tree (Breiman 2001, doi:10.1023/A:1010933404324) is grown on a bootstrap sample of
    ``max_samples`` rows drawn from the universe's sites *outside* the group, with missing
    predictors imputed by that tree's training means. A test site is predicted by the average
    of the trees grown without it: exactly ``trees_per_site`` trees, none of which saw any of its
    rows. With ``n_groups >= number of test sites`` and ``scaled_groups=False`` this is the
    per-fold forest itself.

    Parameters
    ----------
    X, Y, sites, pools
        See the module docstring. Targets are grouped by :func:`merged_target_groups`; a
        group's trees are grown on the rows where all its targets are finite.
    trees_per_site : int
        Out-of-bag trees per test site (the per-fold forest's ``n_estimators``).
    n_groups : int
        Groups per round when all sites of the universe are test sites; each tree is trained
        without about ``1/n_groups`` of the sites.
    scaled_groups : bool
        At most ``tests_per_group`` test sites per group when there are fewer than
        ``tests_per_group * n_groups`` test sites (:func:`groups_per_round`): the cost follows
        the number of test sites. False: ``min(n_groups, n_tests)`` groups whatever the number
        of test sites.
    tests_per_group : int
        Test sites per group of a small selection (with ``scaled_groups``).
    grouping : {"auto", "random", "spread"}
        ``"random"``: test sites shuffled into groups; ``"spread"``: random but spread groups
        (:func:`fluxcore.strategies.base.spread_groups`), whose members are far apart in the
        space of the sites' mean predictors (:func:`site_profiles`), so a tree leaves out few
        of a test site's most similar sites. Only predictors are used, never fluxes.
        ``"auto"`` (the default): spread groups for a small selection, whose group count the
        ``tests_per_group`` rule sets (:func:`uses_spread_groups`), random groups otherwise.
        Why: a zone's test sites are each other's nearest sites, and a small group of far-apart
        ones leaves out none of a site's nearest neighbours that another group could hold; on
        the 12 arid towers (seeds 0-2), groups of three spread sites had higher medians than
        groups of three random ones (GPP -0.003 against -0.042, ER 0.498 against 0.460), though
        the paired per-site intervals hold 0 (``benchmarks/README.md``). Groups of about 20
        (W) leave out some neighbours of every site however they are drawn; there spread
        groups gained nothing (paired per-site R² +0.002 GPP, -0.001 ER on the 204 towers),
        so W keeps random groups.
    merge_targets : float
        Tolerance of :func:`merged_target_groups` (0, the default: one set of trees per
        missing-value pattern, as ``RFLearner``).
    max_samples : float or int
        Rows per tree: a fraction of the training rows or a count (bootstrap).
    min_tree_rows, max_tree_rows : int
        With a fraction: at least ``min_tree_rows`` rows per tree (all rows when fewer) and at
        most ``max_tree_rows`` (None: no cap), as :class:`~fluxcore.learners.rf.RFLearner`.
    min_samples_leaf, max_features, max_depth, splitter
        As in :class:`sklearn.tree.DecisionTreeRegressor` (``splitter="random"``: extremely
        randomized trees, Geurts et al. 2006, doi:10.1007/s10994-006-6226-1).
    grow : {"auto", "lazy", "full"}
        ``"lazy"``: each tree grows only the branches its test group's rows reach
        (:func:`fluxcore.learners.lazytree.lazy_tree_predict_sample`): the same CART tree for
        those rows (scikit-learn's with all features tried), at a fraction of the cost when the
        group's rows are few; ``splitter="random"`` is always grown in full. ``"full"``:
        scikit-learn's :class:`~sklearn.tree.DecisionTreeRegressor`, whole. ``"auto"`` (the
        default): lazy, with the compiled kernel (Numba); without Numba, lazy NumPy trees when
        every group holds at most ``tests_per_group`` test sites and scikit-learn's otherwise. Why: the
        compiled lazy tree is about twice as fast as scikit-learn's builder even when a group of
        20 towers reaches nearly all of the tree (one tree of 36,000 rows: 0.18 s against
        0.46 s; three arid towers: 0.06 s against 0.44 s; ``benchmarks/bench_lazytree.py``). The
        lazy trees draw their features from another random stream, so their predictions differ
        from the full trees' as those of another seed do.
    random_state : int
        Seed; the result is deterministic for a fixed seed whatever ``n_jobs``, and whether the
        batch ran in one go or was resumed from its checkpoint.
    n_jobs : int
        Threads growing trees in parallel (scikit-learn's builder and the compiled lazy kernel
        release the GIL while growing).
    n_processes : int, optional
        Worker processes growing lazy NumPy trees (without Numba), which hold the GIL between
        NumPy calls (default ``n_jobs``; 1: threads). The compiled kernel releases the GIL and
        grows in ``n_jobs`` threads. The predictions do not depend on it.
    progress : callable, optional
        ``progress(fraction_done)`` after each unit (a round of a universe); it may raise to
        stop the computation.
    checkpoint : Checkpoint, optional
        Where each finished round of a universe is stored (the running sums of that universe's
        test sites) and read back by a rerun, which resumes after the last stored round.
    mapper : TaskMapper, optional
        Where the trees are grown: :class:`fluxcore.strategies.base.LocalMapper` with
        ``n_jobs`` threads by default, or a :class:`fluxcore.parallel.DaskSession` (the
        arrays are sent to each worker once; a task grows a whole round's trees there). At
        most twice as many tasks as the mapper has slots are in flight; the trees'
        predictions are summed in the order of the plan, so the result does not depend on
        the mapper.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, t).
    """
    pools, X, Y, index, rows_of = prepare_arrays(X, Y, sites, pools, dtype=np.float32)
    X = np.ascontiguousarray(X)  # rows in one piece: a tree's sample is gathered row by row
    t = Y.shape[1]
    miss = ~np.isfinite(X)
    sum_obs = np.zeros((len(rows_of), X.shape[1]))
    cnt_obs = np.zeros((len(rows_of), X.shape[1]))
    for i, rows in enumerate(rows_of):  # per-site sums (np.add.at over all rows: 3 s on W)
        sum_obs[i] = np.where(miss[rows], 0.0, X[rows]).sum(axis=0, dtype=np.float64)
        cnt_obs[i] = (~miss[rows]).sum(axis=0)
    finite = np.isfinite(Y)
    target_groups = merged_target_groups(finite, merge_targets)
    fit_ok = [finite[:, g].all(axis=1) for g in target_groups]
    checkpoint = checkpoint or Checkpoint(None, "", "")

    if grouping not in ("auto", "random", "spread"):
        raise ValueError(f"grouping must be 'auto', 'random' or 'spread', not {grouping!r}")
    if grow not in ("auto", "lazy", "full"):
        raise ValueError(f"grow must be 'auto', 'lazy' or 'full', not {grow!r}")
    profile = site_profiles(sum_obs, cnt_obs) if grouping != "random" else None

    # the whole plan is drawn first: a unit's trees never depend on which units ran before
    rng = np.random.default_rng(random_state)
    units = []  # per universe: (test sites, [per round: [(tree seed, train codes, group)]])
    for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
        tests = sorted(tests)
        g = groups_per_round(len(tests), n_groups, scaled_groups, tests_per_group)
        rounds = []
        small = uses_spread_groups(len(tests), n_groups, scaled_groups, tests_per_group)
        spread = profile is not None and (grouping == "spread" or small)
        few = -(-len(tests) // g) <= tests_per_group  # every group holds a few test sites
        lazy = splitter == "best" and (grow == "lazy" or (grow == "auto" and (HAVE_NUMBA or few)))
        if spread:
            z = profile[[index[s] for s in tests]]
            dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1))
        for _ in range(trees_per_site):
            grps = spread_groups(tests, g, rng, dist) if spread else split_groups(tests, g, rng)
            rounds.append([(int(rng.integers(2**31 - 1)), [index[s] for s in sorted(universe - set(grp))], grp, lazy)
                           for grp in grps])
        units.append((tests, rounds))

    payload = {"X": X, "Y": Y, "miss": miss, "sum_obs": sum_obs, "cnt_obs": cnt_obs, "rows_of": rows_of,
               "index": index, "target_groups": target_groups, "fit_ok": fit_ok, "max_samples": max_samples,
               "min_tree_rows": min_tree_rows, "max_tree_rows": max_tree_rows,
               "min_samples_leaf": min_samples_leaf, "max_features": max_features, "max_depth": max_depth,
               "splitter": splitter, "engine": "numba" if HAVE_NUMBA else "numpy"}

    n_units = sum(len(rounds) for _, rounds in units)
    done = 0
    state = []  # per universe: (running sums, row bounds of its test sites, site -> position)
    tasks, meta = [], []  # trees to grow; (universe, round, last tree of the round)
    for ui, (tests, rounds) in enumerate(units):
        bounds = np.cumsum([0] + [len(rows_of[index[s]]) for s in tests])
        sums = np.zeros((bounds[-1], t))
        start = 0
        for r in range(len(rounds) - 1, -1, -1):  # resume after the last stored round
            got = checkpoint.load(f"u{ui:04d}-r{r:04d}")
            if got is not None and got.get("sums", np.empty(0)).shape == sums.shape:
                sums, start = np.array(got["sums"], dtype=np.float64), r + 1
                break
        done += start
        state.append((sums, bounds, {s: p for p, s in enumerate(tests)}))
        for r in range(start, len(rounds)):
            for j, job in enumerate(rounds[r]):
                tasks.append(job)
                meta.append((ui, r, j == len(rounds[r]) - 1))
    # the NumPy lazy trees hold the GIL between calls: worker processes (the arrays sent once
    # to each) grow them faster than threads; the compiled kernel and scikit-learn's trees
    # release it, so threads share the arrays
    any_lazy = any(job[3] for job in tasks) and not HAVE_NUMBA
    procs = n_jobs if n_processes is None else n_processes
    mapper = mapper or LocalMapper(n_threads=n_jobs, n_processes=max(1, int(procs)) if any_lazy else 1)
    kind = "processes" if (any_lazy and not mapper.distributed and mapper.slots("processes") > 1) else "threads"
    fn = _grow_tree
    if mapper.distributed:  # one task per round on a cluster: fewer, larger tasks (same order)
        cuts = [i + 1 for i, (_, _, last) in enumerate(meta) if last]
        tasks = [tasks[a:b] for a, b in zip([0] + cuts[:-1], cuts, strict=True)]
        meta = [meta[b - 1] for b in cuts]
        fn = _grow_trees
    if done and progress is not None:
        progress(done / n_units)

    def add(i: int, preds: dict[str, np.ndarray] | list[dict[str, np.ndarray]]) -> None:
        nonlocal done
        ui, r, last = meta[i]
        sums, bounds, pos = state[ui]
        for tree in preds if isinstance(preds, list) else [preds]:
            for s, pr in tree.items():  # in plan order: deterministic
                p = pos[s]
                sums[bounds[p]:bounds[p + 1]] += pr
        if last:  # round r of this universe complete: store the running sums
            checkpoint.save(f"u{ui:04d}-r{r:04d}", {"sums": sums}, {"universe": ui, "round": r, "n_tests": len(pos)})
            if r > 0:
                checkpoint.discard(f"u{ui:04d}-r{r - 1:04d}")
            done += 1
            if progress is not None:
                progress(done / n_units)  # may raise to cancel

    mapper.map(fn, tasks, payload=payload, kind=kind, on_result=add,
               window=2 * max(1, mapper.slots(kind)))
    out: dict[str, np.ndarray] = {}
    for (_, rounds), (sums, bounds, pos) in zip(units, state, strict=True):
        for s, p in pos.items():
            out[s] = sums[bounds[p]:bounds[p + 1]] / max(len(rounds), 1)
    return out


def site_profiles(sum_obs: np.ndarray, cnt_obs: np.ndarray) -> np.ndarray:
    """Each site's mean predictors, every column scaled to unit spread across sites (sites, features).

    A column a site never observed takes the mean over sites; a column constant across sites is
    left out (it cannot tell sites apart). Built from predictors only.
    """
    m = np.where(cnt_obs > 0, sum_obs / np.maximum(cnt_obs, 1), np.nan)
    with warnings.catch_warnings():  # a column no site observed: its mean is NaN, then 0
        warnings.simplefilter("ignore", RuntimeWarning)
        col = np.nan_to_num(np.nanmean(m, axis=0), nan=0.0)
    m = np.where(np.isfinite(m), m, col)
    sd = m.std(axis=0)
    keep = sd > 0
    return (m[:, keep] - m[:, keep].mean(axis=0)) / sd[keep]


def _grow_trees(payload: dict, jobs: list) -> list[dict[str, np.ndarray]]:
    """The trees of one round (:func:`_grow_tree` for each job, in order)."""
    return [_grow_tree(payload, job) for job in jobs]


def _grow_tree(payload: dict, job) -> dict[str, np.ndarray]:
    """Grow one tree of :func:`rf_site_oob` (``job``: seed, training site codes, test group).

    Returns the tree's predictions of each test site of the group (rows, targets).
    """
    from sklearn.tree import DecisionTreeRegressor

    X, Y, miss, rows_of, index = (payload[k] for k in ("X", "Y", "miss", "rows_of", "index"))
    max_samples = payload["max_samples"]
    t = Y.shape[1]
    seed, train_codes, group, lazy = job
    r = np.random.default_rng(seed)
    train_rows = np.concatenate([rows_of[s] for s in train_codes])
    cnt = payload["cnt_obs"][train_codes].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(cnt > 0, payload["sum_obs"][train_codes].sum(axis=0) / cnt, 0.0).astype(np.float32)
    test_x = {s: np.where(miss[rows_of[index[s]]], mu, X[rows_of[index[s]]]) for s in group}
    preds = {s: np.empty((len(xt), t)) for s, xt in test_x.items()}
    if lazy:  # the group's rows, stacked once for every target's lazy tree
        xt_all = np.concatenate(list(test_x.values()))
        cuts = np.cumsum([len(xt) for xt in test_x.values()])[:-1]
    for g, ok in zip(payload["target_groups"], payload["fit_ok"], strict=True):
        rows = train_rows[ok[train_rows]]
        if len(rows) == 0:  # no finite value of these targets in the training sites
            for s in preds:
                preds[s][:, g] = np.nan
            continue
        k = int(max_samples if isinstance(max_samples, (int, np.integer)) and max_samples > 1
                else tree_rows(len(rows), max_samples, payload["min_tree_rows"], payload["max_tree_rows"]))
        pick = rows[r.integers(0, len(rows), size=k)]
        if lazy:  # only the branches the group's rows reach: the same tree for these rows
            pick.sort()  # the same sample; rows in order are read faster
            pr = lazy_tree_predict_sample(X, miss, mu, pick, Y[pick][:, g], xt_all,
                                          min_samples_leaf=payload["min_samples_leaf"],
                                          max_features=payload["max_features"], max_depth=payload["max_depth"],
                                          rng=np.random.default_rng(int(r.integers(2**31 - 1))),
                                          engine=payload.get("engine", "auto"))
            for s, part in zip(test_x, np.split(pr, cuts), strict=True):
                preds[s][:, g] = part
            continue
        xs = np.where(miss[pick], mu, X[pick])
        yy = Y[pick][:, g]
        tree = DecisionTreeRegressor(
            min_samples_leaf=payload["min_samples_leaf"], max_features=payload["max_features"],
            max_depth=payload["max_depth"], splitter=payload["splitter"],
            random_state=int(r.integers(2**31 - 1)),
        ).fit(xs, yy[:, 0] if len(g) == 1 else yy)
        for s, xt in test_x.items():
            preds[s][:, g] = tree.predict(xt).reshape(len(xt), len(g))
    return preds


class RFSiteOOB(Strategy):
    """Site-level out-of-bag forest with the learner's tree settings (see :func:`rf_site_oob`)."""

    name = "rf_site_oob"
    description = ("site-level out-of-bag forest (trees grown without a group of sites; one tree per "
                   "target when the targets' missing rows differ)")
    plain_description = "trees grown without a group of sites, each site predicted by the trees that never saw it"
    default_options = {"n_groups": 10, "scaled_groups": False, "tests_per_group": 3, "grouping": "auto",
                       "merge_targets": 0.0, "grow": "auto"}
    option_constraints = {"n_groups": [Interval(int, 1)], "scaled_groups": [Boolean()],
                          "tests_per_group": [Interval(int, 1)], "grouping": [Options("auto", "random", "spread")],
                          "merge_targets": [Interval(float, 0, 1, closed="both")],
                          "grow": [Options("auto", "lazy", "full")]}

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        p = learner.get_params()
        ms = p.get("max_samples")
        seed = p.get("random_state")
        Xa = X.to_numpy(dtype=np.float32)
        Ya = Y.to_numpy(dtype=float)
        sites = np.asarray(sites).astype(str)
        options = {**self.default_options, **dict(options)}
        checkpoint = Checkpoint.of(context, self.name, Xa, Ya, sites, {k: list(v) for k, v in pools.items()},
                                   dict(options), {k: v for k, v in p.items() if k != "n_jobs"})
        return rf_site_oob(Xa, Ya, sites, pools,
                           trees_per_site=int(p.get("n_estimators", 100)), n_groups=int(options["n_groups"]),
                           scaled_groups=bool(options["scaled_groups"]),
                           tests_per_group=int(options["tests_per_group"]),
                           grouping=str(options["grouping"]),
                           merge_targets=float(options["merge_targets"]),
                           max_samples=1.0 if ms is None else ms,
                           min_tree_rows=int(p.get("min_tree_rows", 5000)),
                           max_tree_rows=p.get("max_tree_rows", 40000),
                           min_samples_leaf=p.get("min_samples_leaf", 5),
                           max_features=p.get("max_features", 0.5), max_depth=p.get("max_depth"),
                           splitter=p.get("splitter", "best"), grow=str(options["grow"]),
                           random_state=0 if seed is None else int(seed),
                           n_jobs=max(1, int(context.n_jobs)), n_processes=max(1, int(context.n_processes)),
                           progress=context.progress,
                           checkpoint=checkpoint, mapper=context.mapper)


register_strategy(RFSiteOOB())
