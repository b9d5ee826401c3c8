"""Scaling benchmark: time of workload W against the number of towers, and its exponent.

Runs W (default learners lstm, rf, svm, mlr; targets GPP and ER; default settings, i.e.
``strategy="fast"``; every tower a test site, LOSO among the chosen towers) on seeded random
subsets of ``../shared/data/fluxnet2015`` of 25, 50, 100 and all 204 towers, and on a
synthetic world of 1,000 towers built from the demo generator (:func:`synthetic_world`:
independent demo worlds of 190 sites each, site ids made unique, cut to the tower count).
Per learner it fits the exponent ``b`` of ``seconds = a * towers ** b`` (least squares on
logarithms) over the real subsets, gives the local exponent of each step between consecutive
real tower counts (``segments_real``), and separately ``b`` against site-days over every point
(by default the synthetic towers have two years each, the real ones about seven), and writes a
PNG of the curves. With ``--synthetic-years auto`` the synthetic towers get the real towers'
mean record length (whole years), and the exponent is also fitted over every point, real
subsets and synthetic world together (``towers_all``, with the steps ``segments_all``), as
issue 21 defines the curve. With ``--draws D`` every count below all towers is timed on ``D`` random subsets
(their towers' record lengths differ: one draw's 25 towers can hold shorter records than the
average tower) and the exponent is fitted on each count's geometric mean time
(:func:`count_means`), each draw's own exponent given beside it. The PNG is drawn with
matplotlib when installed, else plotly with kaleido; otherwise only the data is written (the
JSON says so, and an HTML figure is written when plotly alone is available).

Usage::

    flock /work/bench.lock python benchmarks/bench_scaling.py --out benchmarks/results/scaling.json
    # quick look (smaller forests, two sizes, no synthetic world)
    python benchmarks/bench_scaling.py --towers 25,50 --synthetic 0 --learners mlr,rf \\
        --param rf.n_estimators=20 --out benchmarks/out/scaling.json

    # W+ at all 204 towers (W plus tamrl, pmtl pre-trained as in bench_transfer.py, mlp) and
    # the scaling curve of W's learners at 25, 50 and 100 towers, in one run (issue 21)
    flock /work/bench.lock python benchmarks/bench_scaling.py --towers 25,50,100,204 --synthetic 0 \
        --learners lstm,rf,svm,mlr,tamrl,pmtl,mlp --scaling-learners lstm,rf,svm,mlr \
        --pretrain '{"learners": ["pmtl"], "calibrate": true, "synthetic": ["T+2", "T-2"], "lr": 0.0005}' \
        --out benchmarks/results/scaling_Wplus.json

    # rf on three random subsets per count (issue 21, eighth session)
    flock /work/bench.lock python benchmarks/bench_scaling.py --learners rf --draws 3 \
        --out benchmarks/results/scaling_rf_draws.json

    # rf and mlr up to 1,000 synthetic towers of real record length (issue 21, ninth session)
    flock /work/bench.lock python benchmarks/bench_scaling.py --learners rf,mlr --draws 3 \
        --synthetic-years auto --out benchmarks/results/scaling_rf_mlr.json

Nothing is asserted; ``targets_met`` says whether every exponent is at most 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fluxcore.cli.loso import parse_param  # noqa: E402
from fluxcore.config import RunConfig  # noqa: E402
from fluxcore.dataset import FluxDataset  # noqa: E402
from fluxcore.demo import generate_demo  # noqa: E402
from fluxcore.loso import load_run, run_loso  # noqa: E402
from fluxcore.provenance import environment  # noqa: E402
from fluxcore.sources import load_dataset  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fluxnet2015"
W_LEARNERS = ("lstm", "rf", "svm", "mlr")  # workload W; W+ adds the new learners


def peak_mb() -> dict:
    """Peak resident memory [MiB] of this process and of its (waited-for) children."""
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": round(self_mb, 1), "children": round(child_mb, 1)}


def synthetic_world(n_towers: int, n_years: int = 2) -> FluxDataset:
    """A SYNTHETIC world of ``n_towers`` towers from independent demo worlds (seeds 0, 1, ...).

    Each demo world has 190 sites; world ``k``'s site ids get the suffix ``-k`` so that they
    stay unique, and the first ``n_towers`` sites (in world order) are kept.
    """
    sites, daily = [], []
    k = 0
    while sum(len(s) for s in sites) < n_towers:
        ds = generate_demo(seed=k, n_years=n_years)
        s = ds.sites.copy()
        ids = s["SITE_ID"].astype(str) + f"-{k}"
        s["SITE_ID"] = ids.to_numpy()
        s.index = pd.Index(ids.to_numpy(), name=ds.sites.index.name)
        d = ds.daily.copy()
        d["SITE_ID"] = d["SITE_ID"].astype(str) + f"-{k}"
        sites.append(s)
        daily.append(d)
        k += 1
    allsites = pd.concat(sites)
    keep = allsites.index[:n_towers]
    alldaily = pd.concat(daily, ignore_index=True)
    alldaily = alldaily[alldaily["SITE_ID"].isin(keep)].reset_index(drop=True)
    return FluxDataset(sites=allsites.loc[keep], daily=alldaily, name=f"demo-{n_towers}", source="demo",
                       synthetic=True, meta={"generator": "fluxcore.demo", "worlds": k, "n_years": n_years})


def fit_exponent(x, y) -> float | None:
    """Exponent ``b`` of ``y = a x**b`` fitted on logarithms (None with fewer than 2 points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if ok.sum() < 2:
        return None
    return round(float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0]), 3)


def segment_exponents(x, y) -> list[dict]:
    """Local exponents between consecutive points (sorted by ``x``): how fast the time grows
    at each step, e.g. between 100 and 204 towers, where a single fit over all points can hide
    a steeper top end."""
    pts = sorted((float(a), float(b)) for a, b in zip(x, y, strict=True) if a > 0 and np.isfinite(b) and b > 0)
    return [{"from": a[0], "to": b[0], "exponent": round(float(np.log(b[1] / a[1]) / np.log(b[0] / a[0])), 3)}
            for a, b in zip(pts[:-1], pts[1:], strict=True) if b[0] > a[0]]


def count_means(points: list[dict], key) -> tuple[list[int], list[float]]:
    """Tower counts and, per count, the geometric mean of ``key(point)`` over its draws.

    Several random subsets ("draws") of the same tower count differ in their towers' record
    lengths (the first draw of 25 towers of FLUXNET2015 averages 2,075 days per tower, all 204
    towers 2,653); a fit on one value per count, the geometric mean of its draws, weighs every
    count alike however many draws it has (the largest count, all towers, has one).
    """
    by: dict[int, list[float]] = {}
    for p in points:
        v = key(p)
        if v is not None and np.isfinite(v) and v > 0:
            by.setdefault(int(p["towers"]), []).append(float(v))
    counts = sorted(by)
    return counts, [float(np.exp(np.mean(np.log(by[c])))) for c in counts]


def draw_exponents(points: list[dict], key) -> list[float | None]:
    """The exponent against towers of each draw alone (its subsets and the points every draw
    shares, i.e. those without a ``draw``, such as all towers)."""
    draws = sorted({p["draw"] for p in points if p.get("draw") is not None})
    out = []
    for d in draws:
        pts = [p for p in points if p.get("draw") in (d, None)]
        out.append(fit_exponent([p["towers"] for p in pts], [key(p) for p in pts]))
    return out


def comparable_synthetic(points: list[dict], real_days_per_tower: float | None,
                         tolerance: float = 0.1) -> list[dict]:
    """The synthetic points whose towers hold, on average, records within ``tolerance`` of the
    real towers' mean length [days]: only these share a curve with the real subsets (a world of
    two-year towers costs less per tower than one of seven-year towers, and would flatten it)."""
    if not real_days_per_tower:
        return []
    return [p for p in points if p["towers"] > 0
            and abs(p["site_days"] / p["towers"] / real_days_per_tower - 1.0) <= tolerance]


def synthetic_years(real_days_per_tower: float) -> int:
    """Whole calendar years per synthetic tower closest to the real towers' mean record [days]."""
    return max(1, int(round(real_days_per_tower / 365.25)))


def time_w(ds, learners, targets, params, jobs, seed, runs_dir, pretrain=None) -> dict:
    """Wall seconds of W on ``ds`` and the batch seconds of each learner.

    ``pretrain``: the run's pre-training stage (``RunConfig.pretrain``), e.g. for ``pmtl``.
    """
    extra = {"pretrain": pretrain} if pretrain else {}
    cfg = RunConfig(data="demo" if ds.synthetic else str(DEFAULT_DATA), learners=learners, targets=targets,
                    seed=seed, params=params, **extra)
    t0 = time.perf_counter()
    run = run_loso(cfg, dataset=ds, runs_dir=runs_dir, jobs=jobs)
    wall = time.perf_counter() - t0
    per: dict[str, float] = {}
    for fid, secs in load_run(run).manifest.get("fold_seconds", {}).items():
        lrn = fid.split("/", 1)[0]
        per[lrn] = per.get(lrn, 0.0) + float(secs)
    return {"towers": int(ds.n_sites), "site_days": int(ds.n_site_days), "wall_seconds": round(wall, 1),
            "learner_seconds": {k: round(v, 2) for k, v in per.items()},
            "W_seconds": round(sum(v for k, v in per.items() if k in W_LEARNERS), 1),
            "peak_memory_mb": peak_mb()}


def plot(points: list[dict], learners: list[str], out_png: Path) -> str:
    """Write the log-log curves; returns what was written (or why nothing was)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    points = sorted(points, key=lambda p: p["towers"])
    if plt is not None:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for lrn in learners:
            mine = [p for p in points if lrn in p["learner_seconds"] and p["world"] == "fluxnet2015"]
            real = list(zip(*count_means(mine, lambda p, lrn=lrn: p["learner_seconds"][lrn]), strict=True))
            syn = [(p["towers"], p["learner_seconds"][lrn]) for p in points
                   if lrn in p["learner_seconds"] and p["world"] != "fluxnet2015"]
            if not real and not syn:
                continue
            line = ax.loglog(*zip(*(real or syn), strict=True), "o-", label=lrn)[0]
            if len(mine) > len(real):  # several draws per count: each draw as a small dot, the line through their mean
                ax.loglog([p["towers"] for p in mine], [p["learner_seconds"][lrn] for p in mine], ".",
                          color=line.get_color(), alpha=0.6)
            if real and syn:  # the synthetic world: open marker, dotted link from the largest real point
                ax.loglog([real[-1][0], syn[0][0]], [real[-1][1], syn[0][1]], ":", color=line.get_color())
                ax.loglog(*zip(*syn, strict=True), "o", mfc="none", color=line.get_color())
        ax.set_xlabel("towers (filled: FLUXNET2015, mean of the draws; open: SYNTHETIC world)")
        ax.set_ylabel("seconds (learner batch, 2 cores)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_png, dpi=120)
        return f"PNG written with matplotlib: {out_png}"
    try:
        import plotly.graph_objects as go
    except ImportError:
        return "no figure: neither matplotlib nor plotly is installed (data in the JSON)"
    fig = go.Figure()
    for lrn in learners:
        xs = [p["towers"] for p in points if lrn in p["learner_seconds"]]
        ys = [p["learner_seconds"][lrn] for p in points if lrn in p["learner_seconds"]]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=lrn))
    fig.update_layout(xaxis_type="log", yaxis_type="log", xaxis_title="towers", yaxis_title="seconds")
    try:
        fig.write_image(str(out_png))
        return f"PNG written with plotly + kaleido: {out_png}"
    except Exception as exc:  # noqa: BLE001 - kaleido missing or broken
        html = out_png.with_suffix(".html")
        fig.write_html(str(html), include_plotlyjs="cdn")
        return f"no PNG (plotly cannot export images: {type(exc).__name__}); HTML figure: {html}"


def finish(result: dict, learners: list[str], out: Path) -> None:
    """Exponents, figure and targets from the points measured so far; writes ``out``
    (called after every point, so that a run cut short still has its curve)."""
    real = [p for p in result["points"] if p["world"] == "fluxnet2015"]
    syn = [p for p in result["points"] if p["world"] != "fluxnet2015"]
    like = comparable_synthetic(syn, result["workload"].get("real_days_per_tower"))

    def fits(key) -> dict:
        counts, means = count_means(real, key)
        out = {"towers_real": fit_exponent(counts, means),
               "site_days_all": fit_exponent([p["site_days"] for p in result["points"]],
                                             [key(p) for p in result["points"]]),
               "segments_real": segment_exponents(counts, means)}
        if like:  # the synthetic towers hold records as long as the real ones: one curve
            out["towers_all"] = fit_exponent(counts + [p["towers"] for p in like], means + [key(p) for p in like])
            out["segments_all"] = segment_exponents(counts + [p["towers"] for p in like],
                                                    means + [key(p) for p in like])
        if any(p.get("draw") for p in real):  # several draws: each one's own exponent too
            out["towers_real_per_draw"] = draw_exponents(real, key)
            out["site_days_real"] = fit_exponent([p["site_days"] for p in real], [key(p) for p in real])
        return out

    result["exponents"] = {lrn: fits(lambda p, lrn=lrn: p["learner_seconds"].get(lrn, np.nan)) for lrn in learners}
    # W: the sum of W's learners (the largest point may time W+, whose wall holds more learners)
    w = fits(lambda p: p["W_seconds"])
    result["exponents"]["W"] = {k: v for k, v in w.items() if k != "segments_real"}
    result["figure"] = plot(result["points"], learners, out.with_suffix(".png"))
    result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    exps = [v["towers_real"] for v in result["exponents"].values() if v["towers_real"] is not None]
    result["targets_met"] = {"exponent_at_most_1.1": bool(exps) and max(exps) <= 1.1}
    if like:  # the fit: real subsets and the synthetic world together
        alls = [v["towers_all"] for v in result["exponents"].values() if v.get("towers_all") is not None]
        result["targets_met"]["exponent_at_most_1.1_all_points"] = bool(alls) and max(alls) <= 1.1
    out.write_text(json.dumps(result, indent=2, default=str))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--towers", default="25,50,100,204", help="real tower counts (204 or more: all)")
    ap.add_argument("--synthetic", type=int, default=1000, help="towers of the synthetic world (0: none)")
    ap.add_argument("--synthetic-years", default="2",
                    help="calendar years per synthetic tower, or 'auto': the whole number of years "
                         "closest to the real towers' mean record, so that the synthetic world "
                         "extends the real curve (exponent 'towers_all' over every point)")
    ap.add_argument("--learners", default="lstm,rf,svm,mlr")
    ap.add_argument("--scaling-learners", default=None,
                    help="learners timed at the tower counts below the largest (default: --learners); "
                         "the largest count times every learner (W+)")
    ap.add_argument("--synthetic-learners", default=None,
                    help="learners timed on the synthetic world (default: --learners)")
    ap.add_argument("--pretrain", default=None,
                    help='pre-training stage as JSON, e.g. \'{"learners": ["pmtl"]}\' (W+ with pmtl)')
    ap.add_argument("--targets", default="GPP,ER")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=1,
                    help="random subsets per tower count below all towers (draw 0: the permutation "
                         "of --seed, as with one draw; draw d: of the seed sequence (seed, d)); the "
                         "exponent is fitted on the geometric mean time of each count")
    ap.add_argument("--param", action="append", default=[], help="LEARNER.NAME=VALUE")
    ap.add_argument("--runs-dir", default=None, help="where the runs are kept (default: a fresh temporary folder)")
    ap.add_argument("--note", default="shared 2-core machine: other helpers' jobs were running")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "scaling.json"))
    args = ap.parse_args(argv)

    learners = [s for s in args.learners.split(",") if s]
    targets = [s for s in args.targets.split(",") if s]
    params: dict = {}
    for text in args.param:
        lrn, name, value = parse_param(text)
        params.setdefault(lrn, {})[name] = value
    pretrain = json.loads(args.pretrain) if args.pretrain else None
    syn_learners = [s for s in (args.synthetic_learners or args.learners).split(",") if s]
    runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tempfile.mkdtemp(prefix="fluxcore-scaling-"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result: dict = {"workload": {"learners": learners, "targets": targets, "jobs": args.jobs, "params": params,
                                 "towers": args.towers, "synthetic": args.synthetic,
                                 "synthetic_learners": syn_learners, "pretrain": pretrain,
                                 "scaling_learners": args.scaling_learners or args.learners,
                                 "W": list(W_LEARNERS), "runs_dir": str(runs_dir)},
                    "machine": {"note": args.note, "cpu_count": os.cpu_count(),
                                "load_average_start": [round(x, 2) for x in os.getloadavg()]},
                    "environment": environment(), "points": []}

    if args.draws < 1:
        ap.error("--draws must be at least 1")
    if args.synthetic_years != "auto" and not (args.synthetic_years.isdigit() and int(args.synthetic_years) > 0):
        ap.error(f"--synthetic-years must be a positive whole number or 'auto', not {args.synthetic_years!r}")
    result["workload"]["draws"] = args.draws
    ds_all = load_dataset(args.data)
    ids = sorted(ds_all.site_ids)
    result["workload"]["real_days_per_tower"] = round(ds_all.n_site_days / max(ds_all.n_sites, 1), 1)
    years = (synthetic_years(result["workload"]["real_days_per_tower"]) if args.synthetic_years == "auto"
             else int(args.synthetic_years))
    result["workload"]["synthetic_years"] = years
    orders = [[str(s) for s in np.random.default_rng(args.seed if d == 0 else [args.seed, d]).permutation(ids)]
              for d in range(args.draws)]
    counts = [int(x) for x in args.towers.split(",") if x]
    small = [s for s in (args.scaling_learners or args.learners).split(",") if s]
    for n in counts:
        whole = n >= ds_all.n_sites
        lrns = learners if n == max(counts) else small
        pre = pretrain if "pmtl" in lrns else None
        for d, order in enumerate(orders[:1] if whole else orders):
            ds = ds_all if whole else ds_all.subset(sites=order[:n])
            point = {"world": "fluxnet2015", **({} if whole or args.draws == 1 else {"draw": d}),
                     **time_w(ds, lrns, targets, {k: v for k, v in params.items() if k in lrns},
                              args.jobs, args.seed, runs_dir, pre)}
            result["points"].append(point)
            print(json.dumps(point), flush=True)
            finish(result, learners, out)
    if args.synthetic:
        ds = synthetic_world(args.synthetic, n_years=years)
        syn_params = {k: v for k, v in params.items() if k in syn_learners}
        point = {"world": f"synthetic demo ({args.synthetic} towers)",
                 **time_w(ds, syn_learners, targets, syn_params,
                          args.jobs, args.seed, runs_dir, pretrain if "pmtl" in syn_learners else None)}
        result["points"].append(point)
        print(json.dumps(point), flush=True)
        finish(result, learners, out)

    print(json.dumps(result["exponents"], indent=2))
    print(result["figure"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
