"""RunConfig.pool_sample: a fixed, seeded sample of training sites stratified by aridity zone
(fluxcore.folds.stratified_pool_sample), as the quick preset uses it."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest

from fluxcore.config import RunConfig
from fluxcore.errors import ConfigError
from fluxcore.folds import fold_train_sites, plan_folds, stratified_pool_sample

#: 100 sites: 10 arid, 20 semi-arid, 30 semi-humid, 38 humid, 2 of unknown zone.
LAYOUT = {"arid": 10, "semi-arid": 20, "semi-humid": 30, "humid": 38, None: 2}


class _Sites:
    """The part of a Dataset that the fold functions read."""

    def __init__(self, layout=LAYOUT):
        rows = [(f"S{i:03d}", z) for i, (z, n) in enumerate((z, n) for z, n in layout.items() for _ in range(n))]
        rows = [(f"S{k:03d}", z) for k, (_, z) in enumerate(rows)]
        self.sites = pd.DataFrame({"ARIDITY_ZONE": [z for _, z in rows]}, index=[s for s, _ in rows])
        self.site_ids = [s for s, _ in rows]

    def zone_of(self, site):
        z = self.sites["ARIDITY_ZONE"].get(site)
        return z if isinstance(z, str) else None


@pytest.fixture()
def ds():
    return _Sites()


def _zones(ds, sites):
    return Counter(ds.zone_of(s) for s in sites)


def test_sample_is_balanced_over_the_zones_and_fixed_by_the_seed(ds):
    zones = ds.sites["ARIDITY_ZONE"]
    s = stratified_pool_sample(ds.site_ids, zones, 40, seed=0)
    assert len(s) == 40 and len(set(s)) == 40
    # balanced: 8 per stratum; the 2 unknown-zone sites leave 6, one more each, the last 2 to
    # the zones with most sites left (humid, semi-humid)
    assert _zones(ds, s) == {"arid": 9, "semi-arid": 9, "semi-humid": 10, "humid": 10, None: 2}
    assert s == [x for x in ds.site_ids if x in set(s)]  # dataset order
    assert stratified_pool_sample(ds.site_ids, zones, 40, seed=0) == s
    assert stratified_pool_sample(list(reversed(ds.site_ids)), zones, 40, seed=0) == s[::-1]
    assert stratified_pool_sample(ds.site_ids, zones, 40, seed=1) != s
    # every zone gets a site when the size allows it, and never more sites than it has
    small = stratified_pool_sample(ds.site_ids, zones, 5, seed=0)
    assert set(_zones(ds, small).values()) == {1}
    assert stratified_pool_sample(ds.site_ids, zones, 100, seed=0) == ds.site_ids
    assert stratified_pool_sample(ds.site_ids, zones, 500, seed=0) == ds.site_ids
    lop = _Sites({"arid": 2, "humid": 50})
    assert _zones(lop, stratified_pool_sample(lop.site_ids, lop.sites["ARIDITY_ZONE"], 30, 0)) == {"arid": 2,
                                                                                                   "humid": 28}
    assert _zones(lop, stratified_pool_sample(lop.site_ids, lop.sites["ARIDITY_ZONE"], 3, 0)) == {"arid": 1,
                                                                                                  "humid": 2}


def test_folds_train_on_the_sample_less_the_test_site_and_every_site_is_tested(ds):
    cfg = RunConfig(learners=["mlr"], targets=["GPP"], pool_sample=40, seed=3)
    sample = stratified_pool_sample(ds.site_ids, ds.sites["ARIDITY_ZONE"], 40, 3)
    for s in ds.site_ids:
        train = fold_train_sites(cfg, ds, s)
        assert s not in train
        assert train == [x for x in sample if x != s]
    plan = plan_folds(cfg, ds)
    assert plan.tests == ds.site_ids and not plan.skipped and len(plan.folds) == 100
    # with pool = zone the fold trains on the sample's sites of its own zone
    zcfg = RunConfig(learners=["mlr"], pool="zone", pool_sample=40, seed=3)
    arid = [s for s in ds.site_ids if ds.zone_of(s) == "arid"]
    assert fold_train_sites(zcfg, ds, arid[0]) == [x for x in sample if x in arid and x != arid[0]]


def test_pool_sample_is_checked_and_part_of_the_run_key():
    with pytest.raises(ConfigError, match=r"pool_sample: must be an integer >= 2 or null, got 1"):
        RunConfig(pool_sample=1).check()
    with pytest.raises(ConfigError, match="pool_sample: must be an integer >= 2 or null, got 'forty'"):
        RunConfig.from_dict({"pool_sample": "forty"}, source="run.yaml")
    with pytest.raises(ConfigError, match="give either pool_sample .* or pool_fraction .*, not both"):
        RunConfig(pool_sample=40, pool_fraction=0.5).check()
    assert "pool_sample" not in RunConfig().to_dict()  # older run keys are kept
    assert RunConfig(pool_sample=40).to_dict()["pool_sample"] == 40
    assert RunConfig.from_dict(RunConfig(pool_sample=40).to_dict()).pool_sample == 40
