"""Time a killed fast batch loses: kill the rf batch at about half way, rerun, compare.

Runs the rf learner (fast strategy, default settings unless ``--param``) on the towers of
``../shared/data/fluxnet2015`` three ways, each in a fresh runs folder and a fresh Python
process (``python -m fluxcore loso``-like child running :func:`fluxcore.loso.run_loso`):

1. uninterrupted;
2. killed with SIGKILL once the batch has stored ``--kill-at`` of its checkpoint units
   (rounds of trees), then
3. rerun in the same runs folder (it resumes from the stored units).

Writes the wall seconds of each, the time lost ``(killed + rerun) - uninterrupted``, the
units computed by the rerun and whether its predictions equal the uninterrupted run's.

Usage::

    flock /work/bench.lock python benchmarks/bench_resume.py --out benchmarks/results/speed_resume.json
    python benchmarks/bench_resume.py --param rf.n_estimators=20 --n-towers 50 --out benchmarks/out/resume.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"

CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from fluxcore.config import RunConfig
from fluxcore.loso import run_loso
from fluxcore.sources import load_dataset
ds = load_dataset({data!r})
if {n_towers!r}:
    ds = ds.subset(sites=sorted(ds.site_ids)[:{n_towers!r}])
cfg = RunConfig(data={data!r}, learners=["rf"], targets=["GPP", "ER"], params={params!r})
print(run_loso(cfg, dataset=ds, runs_dir={runs!r}, jobs={jobs!r}), flush=True)
"""


def child(args, params, runs: Path) -> subprocess.Popen:
    code = CHILD.format(root=str(ROOT), data=args.data, n_towers=args.n_towers, params=params,
                        runs=str(runs), jobs=args.jobs)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def units(runs: Path) -> list[Path]:
    return sorted(runs.glob("*/units/rf/*.npz"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--n-towers", type=int, default=0, help="first N towers (0: all)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of the rounds stored before the kill")
    ap.add_argument("--param", action="append", default=[], help="rf.NAME=VALUE")
    ap.add_argument("--note", default="shared 2-core machine: other helpers' jobs were running")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "resume.json"))
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from fluxcore.cli.loso import parse_param
    from fluxcore.loso import load_run

    params: dict = {}
    for text in args.param:
        lrn, name, value = parse_param(text)
        params.setdefault(lrn, {})[name] = value
    n_rounds = int(params.get("rf", {}).get("n_estimators", 100))
    base = Path(tempfile.mkdtemp(prefix="fluxcore-resume-"))
    result: dict = {"workload": {"learner": "rf", "n_towers": args.n_towers or "all", "jobs": args.jobs,
                                 "params": params, "kill_at": args.kill_at},
                    "machine": {"note": args.note, "load_average_start": [round(x, 2) for x in os.getloadavg()]}}

    t0 = time.perf_counter()
    p = child(args, params, base / "a")
    run_a = Path(p.communicate()[0].strip().splitlines()[-1])
    result["uninterrupted_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result), flush=True)

    runs_b = base / "b"
    t0 = time.perf_counter()
    p = child(args, params, runs_b)
    killed_after = None
    while p.poll() is None:
        stored = units(runs_b)
        rounds = max((int(u.stem.rsplit("-r", 1)[-1]) + 1 for u in stored), default=0)
        if rounds >= args.kill_at * n_rounds:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            killed_after = rounds
            break
        time.sleep(0.2)
    result["killed_seconds"] = round(time.perf_counter() - t0, 1)
    result["rounds_stored_at_kill"] = killed_after
    t0 = time.perf_counter()
    p = child(args, params, runs_b)
    run_b = Path(p.communicate()[0].strip().splitlines()[-1])
    result["rerun_seconds"] = round(time.perf_counter() - t0, 1)
    result["time_lost_seconds"] = round(result["killed_seconds"] + result["rerun_seconds"]
                                        - result["uninterrupted_seconds"], 1)
    pa = load_run(run_a).predictions.sort_values(["target", "SITE_ID", "DATE"])
    pb = load_run(run_b).predictions.sort_values(["target", "SITE_ID", "DATE"])
    result["identical_predictions"] = bool(np.array_equal(pa["predicted"].to_numpy(), pb["predicted"].to_numpy(),
                                                          equal_nan=True))
    result["units_left_after_rerun"] = len(units(runs_b))
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
