"""Classroom quick preset: time and skill of a one-zone lesson run on real towers and the demo world.

Prints JSON (``benchmarks/results/quick_preset_2026-11-29.json`` holds one result).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.metrics import skill_summary  # noqa: E402
from fluxcore.presets import QUICK, apply_preset  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

if __name__ == "__main__":
    out = {}
    for data, learners in ((str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fluxnet2015"), ["mlr", "rf"]), (str(Path(__file__).resolve().parents[2] / "shared" / "data" / "fluxnet2015"), ["mlr", "rf", "svm", "lstm"]), ("demo", ["mlr", "rf", "svm", "lstm"])):
        t0 = time.perf_counter()
        ds = load_dataset(data)
        t_load = time.perf_counter() - t0
        cfg = apply_preset(RunConfig(data=data, learners=learners, targets=["GPP", "ER"], zones=["arid"]), QUICK)
        t0 = time.perf_counter()
        run = run_loso(cfg, dataset=ds, runs_dir=tempfile.mkdtemp(), jobs=2)
        sec = time.perf_counter() - t0
        sk = skill_summary(load_run(run).metrics)
        out[f"{'real' if data != 'demo' else 'demo'}:{','.join(learners)}"] = {
            "load_seconds": round(t_load, 1), "run_seconds": round(sec, 1),
            "n_test_sites": int(load_run(run).metrics["SITE_ID"].nunique()),
            "median_R2": {f"{r.learner}/{r.target}": round(r.R2_median, 3) for r in sk.itertuples()}}
        print(json.dumps(out), flush=True)
