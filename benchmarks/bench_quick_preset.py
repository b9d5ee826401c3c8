"""Classroom quick preset: time and skill of a one-zone lesson run on real towers and the demo world.

Each case runs the quick preset (``fluxcore.presets.QUICK``: each fold trains on the other
towers of the test site's zone; ``--presets quick,quick-sample`` adds the alternative measured
for issue 22: the same settings with ``pool="all"`` and ``pool_sample=40``, a seeded sample of
40 training towers, about as many from each zone) with the arid
zone as test sites, targets GPP and ER, ``jobs=2``, in a fresh temporary run store, and
records the load and run seconds, the median seconds per fold by learner (what
``fluxcore.presets.DEFAULT_FOLD_SECONDS`` documents) and the median R² by learner and target.
Prints one JSON line per case and writes the whole result to ``--out``
(``benchmarks/results/quick_preset_2026-11-29.json`` holds the zone-pool version's result).

Usage::

    nice -n 19 python benchmarks/bench_quick_preset.py --out benchmarks/out/quick_preset_new.json
    nice -n 19 python benchmarks/bench_quick_preset.py --cases demo:mlr,rf,svm,lstm --presets quick,quick-sample
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.folds import fold_train_sites, test_sites  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.metrics import skill_summary  # noqa: E402
from fluxcore.presets import PRESETS, apply_preset  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

REAL = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fluxnet2015")
CASES = ("real:mlr,rf", "real:mlr,rf,svm,lstm", "demo:mlr,rf,svm,lstm")
#: the alternative pool measured beside the quick preset: a sample of training towers from every zone
SAMPLE_SIZE = 40


def run_case(data_kind: str, learners: list[str], preset_name: str, zone: str = "arid") -> dict:
    """Time and skill of one quick run (a fresh run store: nothing is reused)."""
    data = REAL if data_kind == "real" else "demo"
    preset = PRESETS["quick" if preset_name == "quick-sample" else preset_name]
    t0 = time.perf_counter()
    ds = load_dataset(data)
    t_load = time.perf_counter() - t0
    cfg = apply_preset(RunConfig(data=data, learners=learners, targets=["GPP", "ER"], zones=[zone]), preset)
    if preset_name == "quick-sample":
        cfg.pool, cfg.pool_sample = "all", SAMPLE_SIZE
    tests = test_sites(cfg, ds)
    pools = [fold_train_sites(cfg, ds, s) for s in tests]
    assert all(s not in p for s, p in zip(tests, pools, strict=True))  # never the test site
    t0 = time.perf_counter()
    run = run_loso(cfg, dataset=ds, runs_dir=tempfile.mkdtemp(), jobs=2)
    sec = time.perf_counter() - t0
    res = load_run(run)
    sk = skill_summary(res.metrics)
    per_fold: dict[str, list[float]] = {}
    for fid, s in (res.manifest.get("fold_seconds") or {}).items():
        per_fold.setdefault(fid.split("/")[0], []).append(float(s))
    train_union = sorted(set().union(*map(set, pools))) if pools else []
    return {
        "preset": preset_name, "pool": cfg.pool, "pool_sample": cfg.pool_sample,
        "load_seconds": round(t_load, 1), "run_seconds": round(sec, 1),
        "n_test_sites": int(res.metrics["SITE_ID"].nunique()),
        "training_sites_per_fold": sorted({len(p) for p in pools}),
        "training_sites_by_zone": dict(Counter(str(ds.zone_of(s)) for s in train_union)),
        "median_fold_seconds": {k: round(median(v), 3) for k, v in per_fold.items()},
        "median_R2": {f"{r.learner}/{r.target}": round(r.R2_median, 3) for r in sk.itertuples()},
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=";".join(CASES),
                    help="';'-separated data:learners cases (data: real or demo)")
    ap.add_argument("--presets", default="quick", help="comma-separated: quick, quick-sample")
    ap.add_argument("--zone", default="arid", help="test-site aridity zone")
    ap.add_argument("--out", default=None, help="JSON file to write")
    ap.add_argument("--machine", default="2-core VM shared with other work (timings are upper bounds)")
    a = ap.parse_args(argv)
    out = {"what": f"classroom quick preset(s) {a.presets}; test sites = the {a.zone} zone, targets GPP and ER, "
                   "jobs=2, fresh run store per case", "machine": a.machine, "results": {}}
    for preset in a.presets.split(","):
        for case in filter(None, a.cases.split(";")):
            kind, lrns = case.split(":")
            key = f"{preset}:{kind}:{lrns}"
            out["results"][key] = run_case(kind, lrns.split(","), preset, a.zone)
            print(json.dumps({key: out["results"][key]}), flush=True)
            if a.out:
                Path(a.out).parent.mkdir(parents=True, exist_ok=True)
                Path(a.out).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
