"""Fast leave-one-site-out strategies: the registry and the shared set-up.

A notebook-style LOSO fits one fresh model per test site on all other sites: ``n_sites``
fits on ~``n_rows`` rows each. A *fast strategy* computes every fold's prediction at a
fraction of that cost, either exactly (``mlr_exact``) or as an approximation whose accuracy
``benchmarks/bench_speed.py`` checks against the per-fold reference. No strategy ever lets a
model see the rows of a site it predicts.

A learner names its strategy in its ``fast_strategy`` tag (as scikit-learn's ``RidgeCV`` owns
its fast leave-one-out). Learner-specific kernels live beside their learner
(:mod:`fluxcore.learners.mlr_fast`, ``rf_fast``, ``svm_fast``); the generic ones
(:mod:`fluxcore.strategies.group_holdout`, :mod:`fluxcore.strategies.group_finetune`) work
for *any* learner with the tag, including learners registered outside fluxcore. Each
strategy declares its options with defaults and constraints; the run configuration checks
``strategy_options`` against them (:meth:`Strategy.check_options`).

All strategies take ``X`` (n, p) features with NaN for missing, ``Y`` (n, t) targets with NaN
for missing, ``sites`` (n,) site ids, ``dates`` (n,) and ``pools``: a mapping test site ->
training sites (never containing the test site). They return a mapping test site ->
predictions of shape (rows of that site, t), rows in the order they appear in ``X``.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..params import check_constraints

Pools = Mapping[str, Sequence[str]]

__all__ = [
    "Pools", "Strategy", "StrategyContext", "register_strategy", "get_strategy",
    "available_strategies", "strategy_for", "check_pools", "prepare_arrays", "site_rows",
    "rows_for", "universes", "split_groups", "spread_groups", "digest", "Checkpoint", "TaskMapper", "LocalMapper",
    "blas_limit", "run_ordered",
]

_STRATEGIES: dict[str, Strategy] = {}


TaskFn = Callable[[Any, Any], Any]
ResultFn = Callable[[int, Any], None]


class TaskMapper(Protocol):
    """Where a strategy's independent tasks (group models, trees) run.

    :class:`LocalMapper` (threads or spawned processes on this machine) is the default;
    :class:`fluxcore.parallel.DaskSession` runs the same tasks on a Dask cluster. Both call
    ``fn(payload, task)`` for every task and hand the results back in task order, so the
    predictions do not depend on where the tasks ran.
    """

    distributed: bool
    description: str

    def slots(self, kind: str = "threads") -> int:
        """Tasks that run at the same time for tasks of ``kind``."""

    def map(self, fn: TaskFn, tasks: Iterable, *, payload: Any = None, kind: str = "threads",
            on_result: ResultFn | None = None, window: int | None = None,
            blas_threads: int | None = None) -> list | None:
        """Compute ``fn(payload, task)`` for every task; see :meth:`LocalMapper.map`."""


class LocalMapper:
    """Tasks in this process, in ``n_threads`` threads or in ``n_processes`` spawned processes.

    Parameters
    ----------
    n_threads : int
        Threads for tasks of kind ``"threads"`` (work that releases the GIL: tree growing).
    n_processes : int
        Spawned worker processes for tasks of kind ``"processes"`` (work that holds the GIL or a
        process-wide lock: torch training, liblinear); 1 computes them in this process.
        Spawned processes re-import the calling script: guard a script's entry point with
        ``if __name__ == "__main__":``.
    """

    distributed = False

    def __init__(self, n_threads: int = 1, n_processes: int = 1):
        self.n_threads = max(1, int(n_threads))
        self.n_processes = max(1, int(n_processes))
        self.description = f"local ({self.n_threads} threads, {self.n_processes} processes)"

    def slots(self, kind: str = "threads") -> int:
        return self.n_processes if kind == "processes" else self.n_threads

    def map(self, fn: TaskFn, tasks: Iterable, *, payload: Any = None, kind: str = "threads",
            on_result: ResultFn | None = None, window: int | None = None,
            blas_threads: int | None = None) -> list | None:
        """Compute ``fn(payload, task)`` for every task, results handed back in task order.

        Parameters
        ----------
        fn : callable
            ``fn(payload, task)``; a module-level function for ``kind="processes"`` (it travels
            to the workers by reference).
        tasks : iterable
            Small task descriptions.
        payload : object
            Shared data, sent once to each worker process (threads share it).
        kind : {"threads", "processes"}
            See the class parameters; with one slot the tasks run here, one after the other.
        on_result : callable, optional
            ``on_result(index, result)`` in task order, as soon as the results before are in
            (e.g. to store a checkpoint unit or report progress); it may raise to stop, which
            cancels the tasks not started and stops the worker processes. Without it the
            results are returned as a list.
        window : int, optional
            At most this many tasks submitted and not yet handed back (bounds the memory of
            results waiting for an earlier one); default: all.
        blas_threads : int, optional
            BLAS / OpenMP threads during the tasks (None: unchanged here, 1 in worker processes).

        Returns
        -------
        list or None
            The results in task order, or None when ``on_result`` is given.
        """
        tasks = list(tasks)
        out: list | None = [] if on_result is None else None
        handle = on_result if on_result is not None else (lambda i, r: out.append(r))
        workers = min(self.slots(kind), len(tasks))
        limit = blas_limit(blas_threads) if (kind != "processes" or workers <= 1) else None
        try:
            if workers <= 1:
                for i, task in enumerate(tasks):
                    handle(i, fn(payload, task))
                return out
            if kind == "processes":
                ex: cf.Executor = cf.ProcessPoolExecutor(
                    max_workers=workers, mp_context=mp.get_context("spawn"),
                    initializer=_process_init, initargs=(fn, payload, blas_threads or 1))
                call: Callable = _process_task
            else:
                ex = cf.ThreadPoolExecutor(max_workers=workers)

                def call(task, _fn=fn, _payload=payload):
                    return _fn(_payload, task)
            run_ordered(ex.submit, call, tasks, handle, window,
                     cancel=lambda futs: _stop_pool(ex, futs))
            ex.shutdown(wait=True)
            return out
        finally:
            if limit is not None:
                limit.restore_original_limits()


def run_ordered(submit: Callable, call: Callable, tasks: list, handle: ResultFn, window: int | None,
                cancel: Callable[[list], None]) -> None:
    """``submit(call, task)`` for every task, at most ``window`` in flight; results in task order.

    ``handle(index, result)`` receives the results in task order; when it (or a task) raises,
    ``cancel(futures still queued)`` is called and the exception propagates. Shared by
    :class:`LocalMapper` and :class:`fluxcore.parallel.DaskSession`.
    """
    window = len(tasks) if not window else max(1, int(window))
    queue: deque = deque()
    try:
        for i, task in enumerate(tasks):
            queue.append((i, submit(call, task)))
            while len(queue) >= window:
                j, fut = queue.popleft()
                handle(j, fut.result())
        while queue:
            j, fut = queue.popleft()
            handle(j, fut.result())
    except BaseException:
        cancel([fut for _, fut in queue])
        raise


def _stop_pool(ex: cf.Executor, futures: list) -> None:
    """Cancel pending tasks; a cancelled run must not keep computing in the background."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    if procs:  # the pool then marks the pending futures broken (cancelling them first makes
        for proc in procs:  # its manager thread fail)
            proc.terminate()
        ex.shutdown(wait=True)
        return
    for fut in futures:
        fut.cancel()
    ex.shutdown(wait=True, cancel_futures=True)


_TASK_FN: Any = None
_TASK_PAYLOAD: Any = None


def _process_init(fn: TaskFn, payload: Any, blas_threads: int) -> None:
    global _TASK_FN, _TASK_PAYLOAD
    _TASK_FN, _TASK_PAYLOAD = fn, payload
    blas_limit(blas_threads)  # the workers share the cores


def _process_task(task):
    return _TASK_FN(_TASK_PAYLOAD, task)


def blas_limit(n: int | None):
    """Limit BLAS / OpenMP threads of this process to ``n`` (a threadpoolctl limiter, or None)."""
    if not n:
        return None
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return threadpool_limits(int(n))


@dataclass
class StrategyContext:
    """What the runner gives a strategy besides the data.

    Attributes
    ----------
    n_jobs : int
        Threads for tree or solver work.
    n_processes : int
        Worker processes for strategies that train whole models in processes (spawned: a
        calling script needs an ``if __name__ == "__main__":`` guard).
    progress : callable or None
        ``progress(fraction_done)``; may raise to cancel.
    info : dict
        Filled with per-test-site information for the manifest (e.g. ``val_sites``).
    models : object or None
        A model store with ``load_model(learner, name) -> dict | None`` and
        ``save_model(learner, name, state)`` (:class:`fluxcore.runstore.RunStore`), used to keep
        pre-trained and group models so that a resumed run re-uses them.
    learner_name : str
        Name of the learner in the run (folder name for stored models).
    site_weights : mapping or None
        Fuzzy membership per training site, per test site (strategies with ``weighted``).
    pretrain : object or None
        A :class:`fluxcore.pretrain.PretrainStage` (source targets and fine-tuning plan) for
        strategies that support pre-training.
    mapper : TaskMapper or None
        Where the strategy's tasks run: None is a :class:`LocalMapper` with ``n_jobs`` threads
        and ``n_processes`` processes (see :meth:`task_mapper`); the runner gives a
        :class:`fluxcore.parallel.DaskSession` when the run has a ``scheduler``.
    """

    n_jobs: int = 1
    n_processes: int = 1
    progress: Callable[[float], None] | None = None
    info: dict = field(default_factory=dict)
    models: Any = None
    learner_name: str = ""
    site_weights: Mapping[str, Mapping[str, float]] | None = None
    pretrain: Any = None
    mapper: Any = None

    def task_mapper(self) -> TaskMapper:
        """The mapper of this context: ``mapper``, or local pools sized by ``n_jobs`` / ``n_processes``."""
        if self.mapper is not None:
            return self.mapper
        return LocalMapper(n_threads=self.n_jobs, n_processes=self.n_processes)

    def map(self, fn: TaskFn, tasks: Iterable, **kwargs) -> list | None:
        """``fn(payload, task)`` for every task, in task order (:meth:`LocalMapper.map`)."""
        return self.task_mapper().map(fn, tasks, **kwargs)


class Strategy:
    """A fast leave-one-site-out strategy (subclass and :func:`register_strategy` an instance).

    Class attributes
    ----------------
    name : str
        Registry name (the learners' ``fast_strategy`` tag).
    description : str
        One sentence for manifests, progress messages and the documentation.
    plain_description : str
        Plain words for a classroom progress bar.
    default_options : dict
        Options and their defaults (``RunConfig.strategy_options[learner]`` overrides them).
    option_constraints : dict
        Allowed values per option (:mod:`fluxcore.params` constraint objects).
    weighted : bool
        Supports fuzzy site weights (``site_weights``).
    pretrain : bool
        Supports a pre-training stage (``RunConfig.pretrain``).
    exact : bool
        Equal to the per-fold computation up to rounding.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    plain_description: ClassVar[str] = ""
    default_options: ClassVar[dict[str, Any]] = {}
    option_constraints: ClassVar[dict[str, list]] = {}
    weighted: ClassVar[bool] = False
    pretrain: ClassVar[bool] = False
    exact: ClassVar[bool] = False

    def supports(self, learner, weighted: bool = False) -> bool:
        """Whether this strategy can compute the folds of ``learner`` (unfitted)."""
        return not weighted or self.weighted

    def check_options(self, options: Mapping[str, Any] | None, label: str = "strategy_options") -> dict:
        """Defaults merged with ``options``; one :class:`ConfigError` per unknown or bad option."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.default_options))
        if unknown:
            known = ", ".join(sorted(self.default_options)) or "none"
            raise ConfigError(f"{label}: unknown option(s) {unknown} of fast strategy {self.name!r}; "
                              f"known: {known}")
        check_constraints(options, self.option_constraints, label)
        return {**self.default_options, **options}

    def run(self, learner, X, Y, sites: np.ndarray, dates: np.ndarray, pools: Pools,
            options: Mapping[str, Any], context: StrategyContext) -> dict[str, np.ndarray]:
        """Predictions of every test site of ``pools`` (see the module docstring)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<fast strategy {self.name!r}>"


def register_strategy(strategy: Strategy) -> Strategy:
    """Register a strategy instance under its ``name`` (returns it)."""
    if not strategy.name:
        raise ValueError("a strategy needs a name")
    _STRATEGIES[strategy.name] = strategy
    return strategy


def available_strategies() -> list[str]:
    """Names of the registered strategies.

    The generic strategies register when :mod:`fluxcore.strategies` is imported, the
    learner-specific ones when their learner's module is (importing :mod:`fluxcore.learners`
    registers the built-in ones).
    """
    return sorted(_STRATEGIES)


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name`` (:class:`ConfigError` when unknown)."""
    if name not in _STRATEGIES:
        raise ConfigError(f"unknown fast strategy {name!r}; available: {', '.join(sorted(_STRATEGIES))}")
    return _STRATEGIES[name]


def strategy_for(learner, weighted: bool = False) -> Strategy | None:
    """The fast strategy of an unfitted learner, or None when it must run fold by fold."""
    tag = getattr(learner, "get_tag", lambda *_: None)("fast_strategy")
    if not tag:
        return None
    strategy = get_strategy(tag)
    return strategy if strategy.supports(learner, weighted) else None


# --------------------------------------------------------------------------- helpers
def check_pools(sites: np.ndarray, pools: Pools) -> dict[str, list[str]]:
    present = set(np.unique(sites).tolist())
    out: dict[str, list[str]] = {}
    for test, pool in pools.items():
        pool = [str(s) for s in pool]
        if test in pool:
            raise ConfigError(f"training pool of {test!r} contains the test site itself")
        if test not in present:
            raise ConfigError(f"test site {test!r} has no rows")
        missing = set(pool) - present
        if missing:
            raise ConfigError(f"training pool of {test!r} names sites without rows: {sorted(missing)[:5]}")
        if not pool:
            raise ConfigError(f"training pool of {test!r} is empty")
        out[str(test)] = pool
    return out


def site_codes(sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct site ids (as str) and each row's position among them.

    As ``np.unique(sites.astype(str), return_inverse=True)``, but rows are hashed
    (:func:`pandas.factorize`) and only the distinct ids sorted: sorting every row's id costs
    n log n string comparisons (0.8 s for 2.6 million rows), hashing 0.1-0.3 s.
    """
    sites = np.asarray(sites)
    if sites.size == 0:
        return np.zeros(0, dtype=str), np.zeros(0, dtype=np.intp)
    first, seen = pd.factorize(sites.ravel())
    if (first < 0).any():  # a missing id (None, NaN): its own text, as astype(str) writes it
        uniq, codes = np.unique(sites.astype(str), return_inverse=True)
        return uniq, codes.astype(np.intp)
    uniq, inverse = np.unique(np.asarray(seen).astype(str), return_inverse=True)  # ids equal as str merge
    return uniq, inverse.astype(np.intp)[first]


def rows_by_code(codes: np.ndarray, n_codes: int) -> list[np.ndarray]:
    """The increasing row positions of each code ``0 .. n_codes - 1``, in one stable sort
    (a scan of all rows per code would cost rows x codes)."""
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_codes + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_codes)]


def prepare_arrays(X, Y, sites, pools: Pools, dtype=np.float64):
    """Validated pools, arrays, and the rows of each site: shared set-up of the strategies.

    Returns ``(pools, X, Y, index, rows_of)`` with ``Y`` two-dimensional, ``index`` site id
    -> position and ``rows_of[position]`` the increasing row positions of that site.
    """
    pools = check_pools(sites, pools)
    X = np.asarray(X, dtype=dtype)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    uniq, codes = site_codes(sites)
    index = {s: i for i, s in enumerate(uniq)}
    rows_of = rows_by_code(codes, len(uniq))
    return pools, X, Y, index, rows_of


def site_rows(sites, pools: Pools):
    """Site ids as str, validated pools, and ``{site id: its increasing row positions}``.

    Shared set-up of the strategies that fit whole learners on DataFrames (a plain mapping, so
    it also travels to worker processes); :func:`rows_for` gathers the rows of several sites.
    """
    sites = np.asarray(sites).astype(str)
    pools, _, _, index, rows_of = prepare_arrays(np.zeros((len(sites), 0)), np.zeros(len(sites)), sites, pools)
    return sites, pools, {s: rows_of[i] for s, i in index.items()}


def rows_for(rows_of: Mapping[str, np.ndarray], site_list) -> np.ndarray:
    """Sorted row positions of the sites in ``site_list``."""
    return np.sort(np.concatenate([rows_of[s] for s in site_list]))


def universes(pools: dict[str, list[str]]) -> dict[frozenset, list[str]]:
    """Group test sites by their universe: the sites whose models may predict them.

    A test site that is some other site's training site has the universe "its pool plus
    itself" (the strategies train each group model on the universe without the group, so the
    site is left out of the models that predict it). A test site that is nobody's training
    site (``pool_fraction``, ``pool_sample``: towers outside the training sample) has its
    pool alone as universe: no model can have seen it, and all such sites with one pool share
    one universe with the pool's own test sites, instead of one universe (and one set of
    group models) each. For every test site ``t`` of a universe ``U`` and any group ``G``
    holding ``t``, ``U - G`` is a subset of ``pools[t]``.
    """
    trained_on = set().union(*map(set, pools.values())) if pools else set()
    groups: dict[frozenset, list[str]] = defaultdict(list)
    for test, pool in pools.items():
        groups[frozenset(pool) | ({test} if test in trained_on else frozenset())].append(test)
    return groups


def split_groups(items: list[str], n_groups: int, rng: np.random.Generator) -> list[list[str]]:
    """Items shuffled into ``n_groups`` groups of nearly equal size (random groups)."""
    perm = [items[i] for i in rng.permutation(len(items))]
    n_groups = max(1, min(n_groups, len(perm)))
    return [perm[g::n_groups] for g in range(n_groups)]


def spread_groups(items: list[str], n_groups: int, rng: np.random.Generator,
                  distance: np.ndarray) -> list[list[str]]:
    """Items in ``n_groups`` groups whose members are far apart (random but spread groups).

    The items are visited in a random order; each joins, among the groups with room (at most
    ``ceil(len(items) / n_groups)`` members), the one whose nearest member is farthest from
    it (an empty group first). A group model is trained without its group, so a test site's
    most similar sites, which carry most of what a model can learn for it, stay in the
    models that predict it; random groups of a few sites of one zone often leave out its
    nearest neighbour.

    Parameters
    ----------
    items : list of str
    n_groups : int
    rng : numpy.random.Generator
    distance : numpy.ndarray
        ``(len(items), len(items))`` distances between the items, in the order of ``items``.
    """
    n = len(items)
    order = rng.permutation(n)
    n_groups = max(1, min(n_groups, n))
    cap = -(-n // n_groups)
    nearest = np.full((n_groups, n), np.inf)  # per group: distance of each item to its nearest member
    members: list[list[int]] = [[] for _ in range(n_groups)]
    for i in order:
        room = np.array([len(m) < cap for m in members])
        score = np.where(room, nearest[:, i], -np.inf)
        g = int(np.argmax(score))
        members[g].append(int(i))
        nearest[g] = np.minimum(nearest[g], distance[i])
    return [[items[i] for i in m] for m in members]



# ----------------------------------------------------------------------- checkpoints
def digest(*parts) -> str:
    """A short hex digest of arrays, DataFrames and JSON-able values (the identity of a batch).

    Arrays are hashed by dtype, shape and bytes; DataFrames by their columns and values; other
    values by their sorted JSON text. Two batches with the same digest compute the same units.
    """
    h = hashlib.blake2b(digest_size=12)
    for part in parts:
        if hasattr(part, "to_numpy") and hasattr(part, "columns"):  # DataFrame
            h.update(json.dumps([str(c) for c in part.columns]).encode())
            part = part.to_numpy()
        if isinstance(part, np.ndarray):
            a = np.ascontiguousarray(part)
            if a.dtype == object:
                a = a.astype(str)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
        else:
            h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


class Checkpoint:
    """Stored units of one fast batch: load a unit before computing it, save it once computed.

    A thin layer over the run store's ``save_unit`` / ``load_unit``
    (:class:`fluxcore.runstore.RunStore`); without a store (``models=None``) nothing is stored
    and :meth:`load` always returns None. Unit names are prefixed with ``key`` (a
    :func:`digest` of the batch's data, pools and settings), so a unit of another batch (other
    pools, options or data) is never taken for one of this batch.

    Parameters
    ----------
    models : object or None
        The run store (``StrategyContext.models``).
    learner : str
        Learner name in the run (folder of its units).
    key : str
        Identity of the batch (:func:`digest`).

    Attributes
    ----------
    n_loaded, n_saved : int
        Units read back and units stored by this object (for tests and progress messages).
    """

    def __init__(self, models, learner: str, key: str):
        self.models = models if models is not None and hasattr(models, "save_unit") else None
        self.learner = learner or "learner"
        self.key = key
        self.n_loaded = 0
        self.n_saved = 0

    @classmethod
    def of(cls, context: StrategyContext | None, *key_parts) -> Checkpoint:
        """The checkpoint of a batch run with ``context`` (no store: a no-op checkpoint)."""
        if context is None or context.models is None:
            return cls(None, "", "")
        return cls(context.models, context.learner_name, digest(*key_parts))

    @property
    def active(self) -> bool:
        """Whether units are stored."""
        return self.models is not None

    def name(self, unit: str) -> str:
        return f"{self.key}-{unit}"

    def load(self, unit: str) -> dict[str, np.ndarray] | None:
        """The arrays of a stored unit of this batch, or None (absent, damaged, no store)."""
        if self.models is None:
            return None
        got = self.models.load_unit(self.learner, self.name(unit))
        if got is None or got[1].get("key") != self.key:
            return None
        self.n_loaded += 1
        return got[0]

    def save(self, unit: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> None:
        """Store a finished unit (atomically; no-op without a store)."""
        if self.models is None:
            return
        self.models.save_unit(self.learner, self.name(unit), arrays, {**(meta or {}), "key": self.key})
        self.n_saved += 1

    def discard(self, unit: str) -> None:
        """Delete a stored unit that a later unit supersedes (e.g. an older running sum)."""
        if self.models is None or not hasattr(self.models, "unit_path"):
            return
        self.models.unit_path(self.learner, self.name(unit)).unlink(missing_ok=True)
