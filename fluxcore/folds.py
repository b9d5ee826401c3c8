"""Folds of a leave-one-site-out run: test sites, training pools and the fold plan.

The single definition of which sites a fold trains on. The runner, the heterogeneity
distances and the fuzzy weights all call :func:`fold_train_sites`, so that distances and
memberships use exactly the fold's training set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["POOLS", "config_value", "test_sites", "fold_train_sites", "fold_id", "FoldPlan", "plan_folds", "pool_sample",
           "stratified_pool_sample"]

#: Training-pool rules (``RunConfig.pool``).
POOLS = ("all", "zone")


def config_value(config: Any, key: str, default=None):
    """``config.key`` for a RunConfig, ``config[key]`` for a plain mapping."""
    if config is None:
        return default
    if isinstance(config, Mapping):
        return config.get(key, default)
    return getattr(config, key, default)


def test_sites(config: Any, dataset) -> list[str]:
    """Test sites of a run: dataset sites filtered by ``config.sites`` and ``config.zones``."""
    sites = dataset.site_ids
    wanted = config_value(config, "sites")
    if wanted is not None:
        wanted = set(wanted)
        sites = [s for s in sites if s in wanted]
    zones = config_value(config, "zones")
    if zones is not None:
        zones = set(zones)
        sites = [s for s in sites if dataset.zone_of(s) in zones]
    return sites


test_sites.__test__ = False  # not a pytest test


def fold_train_sites(config: Any, dataset, test_site: str) -> list[str]:
    """Training sites of the fold that holds out ``test_site``.

    ``pool="all"`` (default): every other site of the dataset; ``pool="zone"``: every other
    site in the test site's aridity zone (none when the test site's zone is unknown). With
    ``pool_fraction < 1`` only the sites of :func:`pool_sample` can train; with
    ``pool_sample = k`` only the ``k`` sites of :func:`stratified_pool_sample`. Sites
    are training sites whether or not they are test sites themselves; the test site never
    is. Sorted as the dataset.
    ``config`` is a :class:`~fluxcore.config.RunConfig` or a mapping with ``pool``.
    """
    test_site = str(test_site)
    sites = dataset.site_ids
    seed = int(config_value(config, "seed", 0) or 0)
    fraction = float(config_value(config, "pool_fraction", 1.0) or 1.0)
    if fraction < 1.0:
        allowed = set(pool_sample(sites, fraction, seed))
        sites = [s for s in sites if s in allowed]
    size = config_value(config, "pool_sample")
    if size is not None:
        allowed = set(stratified_pool_sample(sites, dataset.sites["ARIDITY_ZONE"], int(size), seed))
        sites = [s for s in sites if s in allowed]
    pool = config_value(config, "pool", "all") or "all"
    if pool == "all":
        return [s for s in sites if s != test_site]
    if pool != "zone":
        raise ConfigError(f"unknown pool {pool!r}; choose 'all' or 'zone'")
    zones = dataset.sites["ARIDITY_ZONE"]
    zone = dataset.zone_of(test_site)
    if zone is None:
        return []
    same = set(zones.index[zones == zone].astype(str))
    return [s for s in sites if s != test_site and s in same]


def pool_sample(sites, fraction: float, seed: int = 0) -> list[str]:
    """The fixed sample of training sites of ``RunConfig.pool_fraction`` (in dataset order).

    ``max(2, round(fraction * n))`` sites drawn without replacement with
    ``numpy.random.default_rng(seed)`` from the sorted site ids: the same sample for every
    fold and learner of a run.
    """
    ids = sorted(map(str, sites))
    k = min(len(ids), max(2, int(round(float(fraction) * len(ids)))))
    pick = set(np.asarray(ids)[np.random.default_rng(seed).choice(len(ids), size=k, replace=False)].tolist())
    return [str(s) for s in sites if str(s) in pick]


def stratified_pool_sample(sites, zones: Mapping, size: int, seed: int = 0) -> list[str]:
    """The fixed sample of ``size`` training sites of ``RunConfig.pool_sample`` (in dataset order).

    Balanced by aridity zone: every zone gets the same share of ``size`` as far as it has
    sites (a zone with fewer sites gives all of them, the rest is shared among the others;
    a last remainder goes to the zones with most sites left, ties in zone-name order); sites
    of an unknown zone form a stratum of their own. A balanced sample keeps the rare dry
    zones in the training set: with shares in proportion to the zones' sizes the humid towers
    dominate, and on the 12 real arid towers the median R² fell (mlr GPP -3.4, rf GPP -1.2,
    against -1.1 and -0.1 balanced; ``benchmarks/bench_quick_preset.py``). Within a zone,
    sites are drawn without replacement with ``numpy.random.default_rng(seed)`` from the
    sorted site ids. The sample depends only on the sites, their zones, ``size`` and
    ``seed``: the same for every fold, learner and choice of test sites. All sites when
    ``size`` is at least their number.

    Parameters
    ----------
    sites : iterable of str
        Candidate site ids (dataset order).
    zones : mapping
        Aridity zone by site id (e.g. ``dataset.sites["ARIDITY_ZONE"]``); missing or null:
        unknown.
    size : int
        Number of sites to draw [sites].
    seed : int
        Seed of the draw.

    Returns
    -------
    list of str
        The drawn sites, in the order of ``sites``.
    """
    sites = [str(s) for s in sites]
    left = int(size)
    if left >= len(sites):
        return sites
    strata: dict[str, list[str]] = {}
    for s in sorted(sites):
        z = zones.get(s) if hasattr(zones, "get") else None
        z = str(z) if isinstance(z, str) and z else "unknown"
        strata.setdefault(z, []).append(s)
    names = sorted(strata)
    quota = dict.fromkeys(names, 0)
    while left > 0:
        room = {z: len(strata[z]) - quota[z] for z in names if quota[z] < len(strata[z])}
        share = left // len(room)
        if share == 0:  # fewer sites left to give than zones with room
            for z in sorted(room, key=lambda z: (-room[z], z))[:left]:
                quota[z] += 1
            break
        for z, r in room.items():
            add = min(share, r)
            quota[z] += add
            left -= add
    rng = np.random.default_rng(seed)
    pick: set[str] = set()
    for z in names:
        ids = strata[z]
        pick.update(np.asarray(ids)[rng.choice(len(ids), size=quota[z], replace=False)].tolist())
    return [s for s in sites if s in pick]


def fold_id(learner: str, site: str) -> str:
    """``"<learner>/<site>"``: the key of a fold in the run store and its manifest."""
    return f"{learner}/{site}"


@dataclass
class FoldPlan:
    """All folds of a run.

    Attributes
    ----------
    folds : list of (learner, test site, training sites)
        The folds to compute, learner by learner in config order.
    skipped : list of dict
        ``{"fold": fold id, "reason": text}`` of folds that cannot run.
    tests : list of str
        The run's test sites.
    """

    folds: list[tuple[str, str, list[str]]] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        """Fold ids of :attr:`folds`, in order."""
        return [fold_id(lrn, s) for lrn, s, _ in self.folds]

    def by_id(self) -> dict[str, tuple[str, str, list[str]]]:
        """Fold id -> (learner, test site, training sites)."""
        return {fold_id(lrn, s): (lrn, s, pool) for lrn, s, pool in self.folds}


def plan_folds(config: Any, dataset) -> FoldPlan:
    """All folds of a run and the skipped ones.

    A fold whose pool has fewer than ``config.min_train_sites`` sites is skipped (listed
    with the reason), e.g. the only arid site with ``pool="zone"``.
    """
    tests = test_sites(config, dataset)
    pools = {s: fold_train_sites(config, dataset, s) for s in tests}
    min_sites = int(config_value(config, "min_train_sites", 2))
    plan = FoldPlan(tests=tests)
    for learner in config_value(config, "learners", []):
        for s in tests:
            if len(pools[s]) < min_sites:
                plan.skipped.append({"fold": fold_id(learner, s),
                                     "reason": f"{len(pools[s])} training site(s) < min_train_sites="
                                               f"{min_sites} (pool={config_value(config, 'pool', 'all')})"})
            else:
                plan.folds.append((learner, s, pools[s]))
    return plan
