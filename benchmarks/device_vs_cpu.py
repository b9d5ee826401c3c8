"""Issue 21, item 6: the network learners of W+ on CUDA beside their CPU figures.

Reads the CPU W+ run of :mod:`bench_scaling` (all learners on the 2-core CPU machine) and
one or more runs of the same script on the GPU machine (``--param LEARNER.device=cuda``,
usually one learner per run, as ``benchmarks/device/gpu_wplus_networks.sh`` writes them),
and writes one JSON with, per network learner: the CPU batch seconds, the CUDA batch
seconds and wall seconds of its run, their ratio, and for a learner without a CUDA figure
why (``--not-finished LEARNER=SECONDS``: the run was stopped after that many seconds
without a result; ``--not-run LEARNER=REASON``). Nothing is measured here: every figure is
read from the files named on the command line, which the JSON lists.

Usage::

    python benchmarks/device_vs_cpu.py --cpu benchmarks/results/Wplus_2026-11-29_session3.json \
        --cuda benchmarks/results/wplus_lstm_cuda_2026-11-29.json \
        --cuda benchmarks/results/wplus_tamrl_cuda_2026-11-29.json \
        --not-finished mlp=206 --not-run pmtl="device time used up" \
        --out benchmarks/results/wplus_networks_cuda_2026-11-29.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchio import write_json  # noqa: E402

from fluxcore.errors import ConfigError  # noqa: E402
from fluxcore.learners import make_learner  # noqa: E402


def is_network(learner: str) -> bool:
    """Whether a registered learner runs on a torch device (has a ``device`` hyperparameter):
    the part of W+ that item 6 runs on CUDA. Unknown names are not."""
    try:
        return "device" in make_learner(learner).get_params()
    except ConfigError:
        return False


def _largest_point(result: dict, what: str) -> dict:
    points = [p for p in result.get("points", []) if p.get("world") == "fluxnet2015"]
    if not points:
        raise SystemExit(f"{what}: no FLUXNET2015 point in the file (is it a bench_scaling JSON?)")
    return max(points, key=lambda p: p["towers"])


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for text in items:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise SystemExit(f"{flag} {text!r}: expected LEARNER=VALUE")
        out[name.strip()] = value.strip()
    return out


def _run_info(result: dict, path: str) -> dict:
    env = result.get("environment", {})
    return {"file": path, "git_commit": env.get("git_commit"),
            "torch": env.get("packages", {}).get("torch"),
            "cpu_count": result.get("machine", {}).get("cpu_count"),
            "note": result.get("machine", {}).get("note"),
            "jobs": result.get("workload", {}).get("jobs")}


def compare(cpu: dict, cuda_runs: list[tuple[str, dict]], not_finished: dict[str, str] | None = None,
            not_run: dict[str, str] | None = None, cpu_path: str = "") -> dict:
    """Per network learner: CPU seconds (W+ run) beside CUDA seconds (device runs).

    Parameters
    ----------
    cpu : dict
        A :mod:`bench_scaling` result with the network learners (the CPU W+ run).
    cuda_runs : list of (path, dict)
        :mod:`bench_scaling` results run with ``device=cuda`` for their learners.
    not_finished : dict
        Learner -> seconds after which its CUDA run was stopped without a result.
    not_run : dict
        Learner -> why it has no CUDA run.

    Returns
    -------
    dict
        ``learners`` (one entry per network learner of the CPU run, :func:`is_network`), ``cpu_run``,
        ``cuda_runs`` and the CPU and CUDA towers.
    """
    not_finished, not_run = dict(not_finished or {}), dict(not_run or {})
    cpu_point = _largest_point(cpu, "cpu")
    cuda: dict[str, dict] = {}
    for path, res in cuda_runs:
        point = _largest_point(res, path)
        if point["towers"] != cpu_point["towers"]:
            raise SystemExit(f"{path}: {point['towers']} towers, the CPU run has {cpu_point['towers']}")
        devices = {lrn: p.get("device") for lrn, p in res.get("workload", {}).get("params", {}).items()}
        for lrn, secs in point["learner_seconds"].items():
            if not str(devices.get(lrn, "")).startswith("cuda"):
                raise SystemExit(f"{path}: learner {lrn} did not run with device=cuda")
            cuda[lrn] = {"seconds": secs, "run_wall_seconds": point["wall_seconds"],
                         "peak_memory_mb": point.get("peak_memory_mb"), "file": path}
    learners = {}
    for lrn, cpu_s in cpu_point["learner_seconds"].items():
        if not is_network(lrn):
            continue
        row: dict = {"cpu_seconds": cpu_s}
        if lrn in cuda:
            row.update(cuda_seconds=cuda[lrn]["seconds"], cuda_run_wall_seconds=cuda[lrn]["run_wall_seconds"],
                       cpu_over_cuda=round(cpu_s / cuda[lrn]["seconds"], 2), cuda_file=cuda[lrn]["file"],
                       cuda_peak_memory_mb=cuda[lrn]["peak_memory_mb"])
        elif lrn in not_finished:
            secs = float(not_finished[lrn])
            row.update(cuda_seconds=None, cuda_run_stopped_after_seconds=secs,
                       why="stopped without a result (time limit of the device run): its run's wall "
                           "time, dataset load included, exceeded this")
        else:
            row.update(cuda_seconds=None, why=not_run.get(lrn, "no CUDA run given"))
        learners[lrn] = row
    return {"towers": cpu_point["towers"], "site_days": cpu_point["site_days"], "learners": learners,
            "cpu_run": _run_info(cpu, cpu_path), "cuda_runs": [_run_info(r, p) for p, r in cuda_runs],
            "seconds": "learner batch seconds (the sum of the run's fold seconds of that learner)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cpu", required=True, help="bench_scaling JSON of W+ on CPU")
    ap.add_argument("--cuda", action="append", default=[], help="bench_scaling JSON run with device=cuda")
    ap.add_argument("--not-finished", action="append", default=[], help="LEARNER=SECONDS")
    ap.add_argument("--not-run", action="append", default=[], help="LEARNER=REASON")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    def load(path: str) -> dict:
        try:
            return json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise SystemExit(f"{path}: cannot read a JSON result ({exc})") from None

    result = compare(load(args.cpu), [(p, load(p)) for p in args.cuda],
                     _pairs(args.not_finished, "--not-finished"), _pairs(args.not_run, "--not-run"),
                     cpu_path=args.cpu)
    result["note"] = args.note
    write_json(args.out, result)
    for lrn, row in result["learners"].items():
        print(lrn, row.get("cpu_seconds"), row.get("cuda_seconds"), row.get("why", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
