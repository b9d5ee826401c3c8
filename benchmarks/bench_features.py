"""Feature-set benchmark: does a candidate feature set add leave-one-site-out skill?

Runs the same learner (default ``rf`` with its fast site-level out-of-bag strategy) on all
sites of ``../shared/data/fluxnet2015`` once per feature set, identical in everything else
(seed, hyperparameters, quality control), and reports per set the median per-site R² and r²
overall, per zone and for US sites, and site by site the paired difference candidate -
default (median, share of sites not worse than -0.01). Candidate sets:

``default``
    :class:`fluxcore.features.FeatureConfig` as shipped.
``water``
    + ``water_balance`` (Hargreaves PET, single-bucket relative soil water, 30-day P - PET).
``water+long``
    + ``water_balance``, trailing means over 7, 30 and 90 days, also of TMIN.

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
    unknown = [s for s in sets if s not in FEATURE_SETS]
    if unknown:
        ap.error(f"unknown feature set(s) {unknown}; choose from {list(FEATURE_SETS)}")
    targets = [s for s in args.targets.split(",") if s]
    params = {"rf": {"n_estimators": args.trees}} if args.learner == "rf" else {}
    runs_dir = Path(tempfile.mkdtemp(prefix="fluxcore-features-"))
    ds = load_dataset(args.data)
    result: dict = {"workload": {"data": args.data, "learner": args.learner, "targets": targets,
                                 "params": params, "n_sites": ds.n_sites,
                                 "fingerprint": ds.fingerprint()},
                    "environment": environment(), "sets": {}}
    metrics = {}
    for name in sets:
        cfg = RunConfig(data=args.data, learners=[args.learner], targets=targets, seed=args.seed,
                        features=FEATURE_SETS[name], params=params)
        t0 = time.perf_counter()
        run_dir = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=args.jobs)
        m = load_run(run_dir).metrics
        metrics[name] = m
        entry = {"features": FEATURE_SETS[name], "seconds": round(time.perf_counter() - t0, 1),
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
