"""Compare the stored predictions of two runs: are they identical, per learner and target?

Usage::

    python benchmarks/compare_runs.py RUN_A RUN_B --out benchmarks/results/compare.json

Both runs are read with :func:`fluxcore.runstore.load_run`; rows are matched on
``SITE_ID, DATE, learner, target``. Writes JSON: per learner and target the number of rows in
each run, the number matched, the maximum absolute difference of ``predicted`` [gC m-2 d-1]
(NaN in both counts as equal), whether ``observed`` is identical, and each run's code version,
git commit, data fingerprint and per-learner compute seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fluxcore.runstore import load_run  # noqa: E402


def learner_seconds(manifest: dict) -> dict[str, float]:
    """Compute seconds per learner from a run manifest's ``fold_seconds``."""
    out: dict[str, float] = {}
    for fid, sec in manifest.get("fold_seconds", {}).items():
        lrn = fid.split("/")[0]
        out[lrn] = out.get(lrn, 0.0) + float(sec)
    return {k: round(v, 1) for k, v in sorted(out.items())}


def compare(run_a: Path, run_b: Path) -> dict:
    a, b = load_run(run_a), load_run(run_b)
    keys = ["SITE_ID", "DATE", "learner", "target"]
    pa = a.predictions.astype({"learner": str, "target": str, "SITE_ID": str})
    pb = b.predictions.astype({"learner": str, "target": str, "SITE_ID": str})
    m = pa.merge(pb, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = {}
    for (lrn, tgt), g in m.groupby(["learner", "target"], sort=True):
        both = g[g["_merge"] == "both"]
        pa_, pb_ = both["predicted_a"].to_numpy(float), both["predicted_b"].to_numpy(float)
        same_nan = np.isnan(pa_) == np.isnan(pb_)
        diff = np.abs(pa_ - pb_)
        diff = diff[np.isfinite(diff)]
        oa, ob = both["observed_a"].to_numpy(float), both["observed_b"].to_numpy(float)
        rows[f"{lrn}/{tgt}"] = {
            "rows_a": int((g["_merge"] != "right_only").sum()), "rows_b": int((g["_merge"] != "left_only").sum()),
            "rows_matched": int(len(both)),
            "max_abs_diff_predicted": float(diff.max()) if diff.size else 0.0,
            "nan_pattern_identical": bool(same_nan.all()),
            "identical": bool(same_nan.all() and (diff.size == 0 or diff.max() == 0.0)
                              and len(both) == len(g)),
            "observed_identical": bool(np.array_equal(oa, ob, equal_nan=True)),
        }
    side = {}
    for name, res in (("a", a), ("b", b)):
        man = res.manifest
        side[name] = {"run": str(res.path), "code_version": man.get("code_version"),
                      "git_commit": man.get("git_commit"), "fingerprint": man.get("data", {}).get("fingerprint"),
                      "learner_compute_seconds": learner_seconds(man),
                      "total_seconds": man.get("total_seconds")}
    return {"runs": side, "by_learner_target": rows,
            "all_identical": all(r["identical"] for r in rows.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    result = compare(Path(args.run_a), Path(args.run_b))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text)
    return 0 if result["all_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
