"""Feature-set benchmark: does a candidate feature set (or forest setting) add skill?

Runs the same learner (default ``rf`` with its fast site-level out-of-bag strategy) on all
sites of ``../shared/data/fluxnet2015`` once per candidate set, identical in everything else
(seed, quality control, and the hyperparameters a set does not name), and reports per set the
median per-site R² and r² overall, per zone and for US sites, and site by site the paired
difference candidate - default (median, share of sites not worse than -0.01). Feature sets:

``default``
    :class:`fluxcore.features.FeatureConfig` as shipped.
``water``
    + ``water_balance`` (Hargreaves PET, single-bucket relative soil water, 30-day P - PET).
``water+long``
    + ``water_balance``, trailing means over 7, 30 and 90 days, also of TMIN.

Forest settings (``rf:*``, default features, one ``RFLearner`` parameter changed; only with
``--learner rf``): ``rf:leaf1`` / ``rf:leaf50`` (``min_samples_leaf`` 1 / 50, default 5),
``rf:mf0.8`` (``max_features`` 0.8, default 0.5), ``rf:ms0.3`` (``max_samples`` 0.3, default
0.1). They ask whether the skill gap is a hyperparameter problem; being scored on all towers,
they are diagnostics, not a tuning step (a default chosen from them would have seen every test
site).

A fewer-trees forest (``--trees``, default 20) keeps a set at about 3 minutes on 2 cores;
tree noise then moves single sites, so read the paired medians, not one site.

Usage::

    python benchmarks/bench_features.py --out benchmarks/out/features.json

Writes JSON; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_loso import skill_summary  # noqa: E402
from bench_speed import paired_r2  # noqa: E402

from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"

#: Candidate feature sets: overrides of the default FeatureConfig.
FEATURE_SETS: dict[str, dict] = {
    "default": {},
    "water": {"water_balance": True},
    "water+long": {"water_balance": True, "rolling_variables": ["TA", "TMIN", "VPD", "SW_IN", "P"],
                   "rolling_windows": [7, 30, 90]},
}

#: Forest settings: one RFLearner parameter changed, default features.
RF_SETS: dict[str, dict] = {
    "rf:leaf1": {"min_samples_leaf": 1},
    "rf:leaf50": {"min_samples_leaf": 50},
    "rf:mf0.8": {"max_features": 0.8},
    "rf:ms0.3": {"max_samples": 0.3},
}


def resolve_set(name: str, learner: str, trees: int) -> tuple[dict, dict]:
    """``(features, params)`` of a candidate set for :class:`fluxcore.config.RunConfig`.

    Raises
    ------
    ValueError
        For an unknown set, or a forest setting with a learner other than ``rf``.
    """
    base = {"n_estimators": trees} if learner == "rf" else None
    if name in FEATURE_SETS:
        return dict(FEATURE_SETS[name]), ({"rf": base} if base else {})
    if name in RF_SETS:
        if base is None:
            raise ValueError(f"set {name!r} changes the random forest; it needs --learner rf")
        return {}, {"rf": {**base, **RF_SETS[name]}}
    raise ValueError(f"unknown set {name!r}; choose from {list(FEATURE_SETS) + list(RF_SETS)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--learner", default="rf")
    ap.add_argument("--trees", type=int, default=20, help="rf n_estimators (trees per test site)")
    ap.add_argument("--sets", default=",".join(FEATURE_SETS))
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "features.json"))
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    try:
        resolved = {name: resolve_set(name, args.learner, args.trees) for name in sets}
    except ValueError as exc:
        ap.error(str(exc))
    targets = [s for s in args.targets.split(",") if s]
    params = resolve_set("default", args.learner, args.trees)[1]
    runs_dir = Path(tempfile.mkdtemp(prefix="fluxcore-features-"))
    ds = load_dataset(args.data)
    result: dict = {"workload": {"data": args.data, "learner": args.learner, "targets": targets,
                                 "params": params, "n_sites": ds.n_sites,
                                 "fingerprint": ds.fingerprint()},
                    "environment": environment(), "sets": {}}
    metrics = {}
    for name in sets:
        features, set_params = resolved[name]
        cfg = RunConfig(data=args.data, learners=[args.learner], targets=targets, seed=args.seed,
                        features=features, params=set_params)
        t0 = time.perf_counter()
        run_dir = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=args.jobs)
        m = load_run(run_dir).metrics
        metrics[name] = m
        entry = {"features": features, "params": set_params, "seconds": round(time.perf_counter() - t0, 1),
                 "run_dir": str(run_dir), "skill": {}}
        for tgt in targets:
            mt = m[m["target"] == tgt]
            entry["skill"][tgt] = skill_summary(mt)
            if name != "default" and "default" in metrics:
                base = metrics["default"]
                entry["skill"][tgt]["paired_vs_default"] = paired_r2(base[base["target"] == tgt], mt)
        result["sets"][name] = entry
        print(json.dumps({name: {t: entry["skill"][t]["overall"]["R2_median"] for t in targets},
                          "seconds": entry["seconds"]}), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
