"""``fluxcore data``: summarise a data source (sites, site-days, zones, variables, QC)."""

from __future__ import annotations

import argparse
import json

from ..qc import QCConfig
from ..sources import load_dataset, parse_column_map

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``fluxcore data``."""
    p = sub.add_parser("data", help="summarise a data source (sites, site-days, zones, variables, QC)")
    p.add_argument("--data", default="demo", help="'demo', a folder, or a tidy CSV/Parquet file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--sites-table", default=None, help="optional site table (CSV) for official FLUXNET files")
    p.add_argument("--columns", default=None,
                   help="column map for tidy files: 'their=TA,other=GPP' or a YAML/JSON file")
    p.add_argument("--min-measured-frac", type=float, default=None,
                   help="QC: drop targets on days with a smaller measured fraction of NEE (default 0.1)")
    p.add_argument("--no-qc", action="store_true", help="switch quality control off")
    p.add_argument("--qc-report", action="store_true", help="also print the per-site QC report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``fluxcore data``: summary of a data source."""
    qc = QCConfig.none() if args.no_qc else QCConfig()
    if args.min_measured_frac is not None:
        qc = QCConfig.from_dict({**qc.to_dict(), "min_measured_frac": args.min_measured_frac})
    ds = load_dataset(args.data, qc=qc, sites_table=args.sites_table,
                      column_map=parse_column_map(args.columns))
    s = ds.summary()
    if args.json:
        print(json.dumps(s, indent=2, default=str))
        return 0
    print(f"dataset:    {ds.label}")
    print(f"source:     {s['source']}")
    print(f"sites:      {s['n_sites']}")
    print(f"site-days:  {s['n_site_days']}")
    print("zones:      " + ", ".join(f"{k} {v}" for k, v in s["zones"].items()))
    print(f"variables:  {', '.join(s['variables'])}")
    missing = [v for v in ("TA", "TMIN", "TMAX", "P", "WS", "VPD", "SW_IN", "LAI",
                           "ELEV", "SLOPE", "ASPECT", "CLAY", "SAND", "SILT") if v not in s["variables"]]
    if missing:
        print(f"absent:     {', '.join(missing)}")
    q = s["qc"]
    print(f"QC removed: {q['n_removed']} values at {q['n_sites_affected']} sites"
          + ("" if not q["by_reason"] else " (" + "; ".join(f"{k}: {v}" for k, v in q["by_reason"].items()) + ")"))
    if s["sites_without_position"]:
        print(f"no position: {', '.join(s['sites_without_position'])} (give a site table with LAT/LON)")
    for prob in s["problems"]:
        print(f"problem:    {prob}")
    if args.qc_report and len(ds.qc):
        print(ds.qc.to_string(index=False))
    return 0
