"""Load a flux dataset from the demo world, a FLUXNET2015 folder or a tidy file.

:func:`load_dataset` is the one entry point. ``src`` is

``"demo"``
    the synthetic demo world (:func:`fluxcore.demo.load_demo`).
a folder with ``daily.parquet`` and ``sites.csv`` (and optionally ``monthly_rs.csv``)
    the *prepared FLUXNET2015 layout* (e.g. ``../shared/data/fluxnet2015``), see
    :func:`load_prepared`.
a folder of official FLUXNET2015 / ONEFlux daily files
    ``FLX_<SITE>_FLUXNET2015_{FULLSET,SUBSET}_DD_<Y1>-<Y2>_<v>-<r>.csv`` or AmeriFlux
    ``AMF_<SITE>_FLUXNET_{FULLSET,SUBSET}_DD_<Y1>-<Y2>_<v>-<r>.csv``, see :func:`load_official`.
a ``.csv`` / ``.parquet`` file
    a *tidy* table, one row per site-day, see :func:`load_tidy`.

Every loader returns a :class:`fluxcore.dataset.FluxDataset` with ``daily`` sorted by
``SITE_ID, DATE``, ``SITE_ID`` str, ``DATE`` datetime64[ns] (midnight of the local standard
time day) and every value column float64 (canonical variables plus the QC helper columns
``QC_NEE_FRAC`` / ``QC_TA_FRAC`` when the source has them, see :mod:`fluxcore.qc`).
Quality control (:func:`fluxcore.qc.apply_qc`) is applied at load and reported in
``dataset.qc``.

Bad input raises :class:`fluxcore.errors.DataError` naming the file and the problem. In a
folder (or a multi-site file) bad files/sites are skipped and listed in ``dataset.problems``;
only when nothing can be loaded does it raise. Details and figures: ``docs/data.md``.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .aridity import aridity_zone, site_aridity_from_daily
from .dataset import FluxDataset, make_sites_frame
from .demo import load_demo
from .errors import ConfigError, DataError
from .lai import method_text, month_start, monthly_to_daily
from .qc import QC_HELPER_COLUMNS, QCConfig, apply_qc, merge_reports
from .validation import (
    blank_ids,
    check_site_values,
    group_unit_hints,
    missing_target_problems,
    not_numbers,
    scan_csv_lines,
    sniff_decimal,
    sniff_separator,
    unit_hints,
)
from .variables import DAILY_DRIVERS, STATIC, TARGETS, VARIABLES

#: Value columns that a daily table may hold, in this order.
DAILY_VALUE_COLUMNS: tuple[str, ...] = DAILY_DRIVERS + TARGETS + QC_HELPER_COLUMNS

#: Per-site columns taken into the catalogue when a tidy file or site table has them.
CATALOGUE_COLUMNS: tuple[str, ...] = (
    "NAME", "LAT", "LON", "IGBP", "ARIDITY_INDEX", *STATIC, "KOEPPEN", "COUNTRY", "WHC_MM",
    "MAP_MM",
)
_CATALOGUE_TEXT = {"NAME", "IGBP", "KOEPPEN", "COUNTRY"}

#: Prepared FLUXNET2015 layout: ``daily.parquet`` column -> canonical name.
PREPARED_DAILY_MAP: dict[str, str] = {
    "TA_F": "TA", "TMIN_F": "TMIN", "TMAX_F": "TMAX", "SW_IN_F": "SW_IN", "VPD_F": "VPD",
    "GPP_NT_VUT_REF": "GPP", "RECO_NT_EST": "ER", "NEE_VUT_REF": "NEE",
    "NEE_MEASURED_FRAC": "QC_NEE_FRAC", "TA_MEASURED_FRAC": "QC_TA_FRAC",
}

#: Official FLUXNET2015 / ONEFlux daily (DD) column -> canonical name.
OFFICIAL_DD_MAP: dict[str, str] = {
    "TA_F": "TA", "SW_IN_F": "SW_IN", "VPD_F": "VPD", "P_F": "P", "WS_F": "WS",
    "GPP_NT_VUT_REF": "GPP", "RECO_NT_VUT_REF": "ER", "NEE_VUT_REF": "NEE",
    "NEE_VUT_REF_QC": "QC_NEE_FRAC", "TA_F_QC": "QC_TA_FRAC",
}

#: Names recognised automatically in tidy files and site tables (upper-cased) -> canonical.
ALIASES: dict[str, str] = {
    **{v: v for v in (*DAILY_VALUE_COLUMNS, *CATALOGUE_COLUMNS)},
    "TA_F": "TA", "TMIN_F": "TMIN", "TMAX_F": "TMAX", "P_F": "P", "WS_F": "WS",
    "VPD_F": "VPD", "SW_IN_F": "SW_IN", "LAI_MODIS": "LAI",
    "GPP_NT_VUT_REF": "GPP", "RECO_NT_VUT_REF": "ER", "RECO_NT_EST": "ER", "RECO": "ER",
    "NEE_VUT_REF": "NEE",
    "NEE_MEASURED_FRAC": "QC_NEE_FRAC", "NEE_VUT_REF_QC": "QC_NEE_FRAC",
    "TA_MEASURED_FRAC": "QC_TA_FRAC", "TA_F_QC": "QC_TA_FRAC",
    "ELEV_M": "ELEV", "LOCATION_LAT": "LAT", "LOCATION_LONG": "LON", "LOCATION_ELEV": "ELEV",
    "LATITUDE": "LAT", "LONGITUDE": "LON", "LONG": "LON", "LNG": "LON", "AI": "ARIDITY_INDEX",
    "SITE_NAME": "NAME",
}
SITE_COLUMN_NAMES: tuple[str, ...] = ("SITE_ID", "SITE", "SITEID", "SITE_CODE", "STATION")
DATE_COLUMN_NAMES: tuple[str, ...] = ("DATE", "TIMESTAMP", "DAY", "TIME")

_FLX_RE = re.compile(
    r"^FLX_(?P<site>[A-Za-z]{2}-[A-Za-z0-9]{3})_FLUXNET2015_(?P<set>FULLSET|SUBSET)_DD_"
    r"(?P<y1>\d{4})-(?P<y2>\d{4})_(?P<ver>\d+)-(?P<rel>\d+)\.csv$"
)
_AMF_RE = re.compile(
    r"^AMF_(?P<site>[A-Za-z]{2}-[A-Za-z0-9]{3})_FLUXNET_(?P<set>FULLSET|SUBSET)_DD_"
    r"(?P<y1>\d{4})-(?P<y2>\d{4})_(?P<ver>\d+)-(?P<rel>\d+)\.csv$"
)

#: Robust (99th-percentile) scale limits used to detect fluxes in the wrong unit.
SCALE_MAX: dict[str, float] = {"GPP": 35.0, "ER": 35.0, "NEE": 30.0}
SCALE_MIN_GPP_ER = 0.2
_MISSING = -9990.0  # FLUXNET -9999 (and anything below -9990) means missing


# ---------------------------------------------------------------------- public API
def load_dataset(
    src: str | Path = "demo",
    *,
    qc: QCConfig | dict | None = None,
    sites_table: str | Path | None = None,
    column_map: dict | None = None,
) -> FluxDataset:
    """Load a dataset from a name, folder or file (layout detected).

    Parameters
    ----------
    src : str or Path, default "demo"
        ``"demo"``, a folder (prepared FLUXNET2015 layout or official DD files) or a tidy
        ``.csv`` / ``.parquet`` file.
    qc : QCConfig or dict, optional
        Quality-control settings (default ``QCConfig()``; ``QCConfig.none()`` removes nothing).
    sites_table : str or Path, optional
        Site table (CSV with ``SITE_ID`` and e.g. ``LAT, LON, IGBP, ARIDITY_INDEX, ELEV``)
        for official DD files and tidy files.
    column_map : dict, optional
        ``{their_name: canonical_name}`` for tidy files (applied before automatic
        recognition of canonical and FLUXNET names).

    Returns
    -------
    FluxDataset

    Raises
    ------
    DataError
        The source does not exist, has no recognised layout or nothing in it can be loaded.
    ConfigError
        Invalid ``qc`` or ``column_map``.
    """
    qc_cfg = QCConfig.from_dict(qc) if not isinstance(qc, QCConfig) else qc
    if isinstance(src, str) and src.strip().lower() == "demo":
        return _load_demo(qc_cfg)
    path = Path(src).expanduser()
    if not path.exists():
        raise DataError(path, "does not exist (give 'demo', a data folder or a CSV/Parquet file)")
    if path.is_dir():
        if (path / "daily.parquet").is_file() and (path / "sites.csv").is_file():
            return load_prepared(path, qc=qc_cfg)
        if find_official_files(path):
            return load_official(path, qc=qc_cfg, sites_table=sites_table)
        entries = sorted(p.name for p in path.iterdir() if not p.name.startswith("."))
        if not entries:
            raise DataError(path, "the folder is empty")
        shown = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "")
        raise DataError(
            path,
            "no recognised data layout: expected daily.parquet + sites.csv (prepared FLUXNET2015 "
            "layout) or FLX_<SITE>_FLUXNET2015_*_DD_*.csv / AMF_<SITE>_FLUXNET_*_DD_*.csv files; "
            f"found: {shown}",
        )
    return load_tidy(path, qc=qc_cfg, sites_table=sites_table, column_map=column_map)


def _load_demo(qc: QCConfig) -> FluxDataset:
    ds = load_demo()
    daily, report = apply_qc(ds.daily, qc)
    problems = list(ds.problems) + [f"site {sid}: {msg}" for sid, msg in
                                    missing_target_problems(ds.daily, daily, report, TARGETS)]
    meta = {**ds.meta, "layout": "demo", "qc_config": qc.to_dict()}
    return FluxDataset(
        sites=ds.sites, daily=daily, name=ds.name, source=ds.source or "demo",
        synthetic=ds.synthetic, qc=merge_reports(ds.qc, report), problems=problems,
        meta=meta,
    )


# ------------------------------------------------------------------- helpers
def _read_table(path: Path, problems: list[str] | None = None, **kw: Any) -> pd.DataFrame:
    """Read a CSV or Parquet file, turning any reader failure into a DataError.

    CSV files are first checked line by line (:func:`fluxcore.validation.scan_csv_lines`): a
    line with the wrong number of fields raises; a last line cut short (truncated file) is
    dropped and reported in ``problems`` when a list is given, else raises. A header with
    semicolons and no commas selects ``sep=";"`` (and ``decimal=","`` when the first data
    lines have decimal commas).
    """
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")):
            return pd.read_parquet(path, **kw)
        if "sep" not in kw:
            kw["sep"] = sniff_separator(path)
            if kw["sep"] == ";" and "decimal" not in kw:
                kw["decimal"] = sniff_decimal(path, ";")
        scan = scan_csv_lines(path, kw["sep"])
        if scan is not None and scan.cut_last and problems is None:
            raise DataError(path, scan.cut_last.replace("; that line is not used", ""))
        df = pd.read_csv(path, low_memory=False, **kw)
        if scan is not None and scan.cut_last and len(df):
            problems.append(f"{path}: {scan.cut_last}")
            df = df.iloc[:-1].reset_index(drop=True)
        return df
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(path, "the file is empty") from None
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        kind = "Parquet" if suffixes.endswith((".parquet", ".pq")) else "CSV"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(path, f"cannot be read as {kind}: {msg}") from None
    except Exception as exc:  # pyarrow errors and the like
        raise DataError(path, f"cannot be read: {type(exc).__name__}: {exc}") from None


def parse_dates(values: pd.Series, path: str | Path, column: str = "DATE") -> pd.Series:
    """Parse a date column (``YYYYMMDD`` numbers/strings, ISO strings, dates) to days.

    Parameters
    ----------
    values : pandas.Series
        Raw date values.
    path : str or Path
        File named in the error message.
    column : str
        Column named in the error message.

    Returns
    -------
    pandas.Series
        datetime64[ns] at midnight (time of day dropped).

    Raises
    ------
    DataError
        When any value is missing or cannot be parsed (the first bad values are quoted).
    """
    s = values
    if pd.api.types.is_datetime64_any_dtype(s):
        out = pd.to_datetime(s)
    elif pd.api.types.is_numeric_dtype(s):
        num = pd.to_numeric(s, errors="coerce")
        txt = num.map(lambda x: f"{int(x):d}" if pd.notna(x) and float(x).is_integer() else "")
        # YYYYMMDDHHMM numbers (read from CSV), as the text branch below accepts them
        twelve = bool(len(txt)) and bool(txt.str.fullmatch(r"\d{12}").all())
        out = pd.to_datetime(txt, format="%Y%m%d%H%M" if twelve else "%Y%m%d", errors="coerce")
    elif s.dtype == object and len(s) and isinstance(s.dropna().iloc[0] if s.notna().any() else None,
                                                      (datetime.date, datetime.datetime)):
        out = pd.to_datetime(s, errors="coerce")
    else:
        txt = s.astype("string").str.strip()
        if txt.str.fullmatch(r"\d{8}").fillna(False).all():
            out = pd.to_datetime(txt, format="%Y%m%d", errors="coerce")
        elif txt.str.fullmatch(r"\d{12}").fillna(False).all():  # YYYYMMDDHHMM
            out = pd.to_datetime(txt, format="%Y%m%d%H%M", errors="coerce")
        else:
            try:
                out = pd.to_datetime(txt, errors="coerce", format="ISO8601")
            except (ValueError, TypeError):
                out = pd.to_datetime(txt, errors="coerce", format="mixed")
    _raise_bad_dates(out.isna().to_numpy(), values, path, column, "are missing or cannot be parsed as dates")
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    _check_date_range(out, values, path, column)
    return out.dt.normalize().astype("datetime64[ns]")


def _check_date_range(out: pd.Series, values: pd.Series, path: str | Path, column: str) -> None:
    """Raise :class:`DataError` for parsed dates outside the days datetime64[ns] can hold.

    Parsers may return coarser units (seconds) that hold years such as 1 or -1; fluxcore keeps
    dates in nanoseconds (1677-09-22 to 2262-04-11), so such a value is a bad input, not a
    crash in the conversion.
    """
    arr = out.to_numpy()
    first, last = pd.Timestamp.min.ceil("D").date(), pd.Timestamp.max.floor("D").date()
    bad = (arr < np.datetime64(first).astype(arr.dtype)) | (arr > np.datetime64(last).astype(arr.dtype))
    _raise_bad_dates(bad, values, path, column, f"lie outside the supported dates {first} to {last}")


def _raise_bad_dates(bad: np.ndarray, values: pd.Series, path: str | Path, column: str, what: str) -> None:
    """One :class:`DataError` for the ``bad`` rows of a date column (the first three quoted)."""
    if bad.any():
        idx = np.flatnonzero(bad)
        examples = ", ".join(repr(str(values.iloc[i])) for i in idx[:3])
        raise DataError(path, f"{idx.size} value(s) of date column {column!r} {what} (e.g. {examples} "
                              f"in data row {idx[0] + 1}); use YYYY-MM-DD or YYYYMMDD")


def _check_duplicates(daily: pd.DataFrame, path: str | Path) -> None:
    dup = daily.duplicated(["SITE_ID", "DATE"], keep=False)
    if dup.any():
        first = daily.loc[dup].iloc[0]
        n = int(daily.duplicated(["SITE_ID", "DATE"]).sum())
        raise DataError(
            path,
            f"{n} duplicated site-day(s) (e.g. site {first['SITE_ID']} on "
            f"{pd.Timestamp(first['DATE']).date()}); each site may have one row per day "
            "(is it sub-daily data?)",
        )


def scale_problem(values: np.ndarray | pd.Series, var: str) -> str | None:
    """Say whether a flux looks like it is in the wrong unit (None when plausible).

    The robust 99th percentile of ``|GPP|`` / ``|ER|`` in gC m-2 d-1 is 0.5-28 at the 204
    FLUXNET2015 sites; above :data:`SCALE_MAX` it is most likely g CO2 or mg C, below
    :data:`SCALE_MIN_GPP_ER` kg C. Daily-mean umol CO2 m-2 s-1 cannot be told apart by range
    (1 umol m-2 s-1 = 1.0368 gC m-2 d-1, 12.011e-6 g * 86400 s).

    Parameters
    ----------
    values : array_like
        The flux values (NaN ignored; fewer than 30 values are not judged).
    var : str
        ``"GPP"``, ``"ER"`` or ``"NEE"``.

    Returns
    -------
    str or None
    """
    x = np.asarray(values, dtype=float)
    x = np.abs(x[np.isfinite(x)])
    if x.size < 30 or var not in SCALE_MAX:
        return None
    p99 = float(np.quantile(x, 0.99))
    typical = 12.0
    if p99 > SCALE_MAX[var]:
        direction = "too large"
        candidates = {"g CO2 m-2 d-1 (divide by 3.664)": 3.664,
                      "gC m-2 yr-1 (divide by 365.25)": 365.25,
                      "mg C m-2 d-1 (divide by 1000)": 1000.0,
                      "mg CO2 m-2 d-1 (divide by 3664)": 3664.0}
    elif var in ("GPP", "ER") and p99 < SCALE_MIN_GPP_ER:
        direction = "too small"
        candidates = {"kg C m-2 d-1 (multiply by 1000)": 1e-3,
                      "g C m-2 per half-hour (multiply by 48)": 1.0 / 48.0,
                      "mol C m-2 d-1 (multiply by 12.011)": 1.0 / 12.011}
    else:
        return None
    best = min(candidates, key=lambda k: abs(np.log(p99 / (typical * candidates[k]))))
    return (f"{var} values are {direction} for gC m-2 d-1 (99th percentile {p99:.4g}; "
            f"expected about {SCALE_MIN_GPP_ER}-30): the unit looks like {best}")


def _finish(
    daily: pd.DataFrame,
    sites: pd.DataFrame | None,
    *,
    name: str,
    source: str,
    qc: QCConfig,
    problems: list[str],
    meta: dict,
    problem_prefix: str | dict[str, str],
) -> FluxDataset:
    """Shared last steps: dtypes, per-site checks, aridity, catalogue, QC."""
    keep = ["SITE_ID", "DATE"] + [c for c in DAILY_VALUE_COLUMNS if c in daily.columns]
    daily = daily[keep].copy()
    daily["SITE_ID"] = daily["SITE_ID"].astype(str)
    def labels(mask: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """(prefix, mask) per file: one for a single file, one per site's file otherwise."""
        if isinstance(problem_prefix, str):
            return [(problem_prefix, mask)]
        sid = daily["SITE_ID"].to_numpy()
        return [(problem_prefix.get(s, f"{source}: "), mask & (sid == s)) for s in sorted(set(sid[mask]))]

    for c in keep[2:]:
        raw_c = daily[c]
        v = pd.to_numeric(raw_c, errors="coerce").astype("float64")
        lost = not_numbers(raw_c)  # text in a value column: say what was lost
        for label, m in labels(lost) if lost.any() else []:
            problems.append(f"{label}column {c}: {int(m.sum())} non-numeric value(s) set to "
                            f"missing (e.g. {str(raw_c[m].iloc[0])!r})")
        v = v.mask(np.isfinite(v) & (v <= _MISSING))  # -9999 missing; inf kept for QC
        if c in QC_HELPER_COLUMNS:  # fractions: a percentage would switch the QC filter off
            out = (np.isfinite(v) & ((v < 0) | (v > 1))).to_numpy()
            for label, m in labels(out) if out.any() else []:
                problems.append(f"{label}column {c}: {int(m.sum())} value(s) outside the fraction range "
                                f"0-1 (e.g. {v[m].iloc[0]:g}; a percentage? divide by 100) set to missing")
            v = v.mask(out)
        daily[c] = v
    daily = daily.sort_values(["SITE_ID", "DATE"], kind="mergesort").reset_index(drop=True)

    # per-site checks before QC: no target at all, or fluxes on the wrong scale
    targets = [t for t in TARGETS if t in daily.columns]
    drop: list[str] = []
    for sid, g in daily.groupby("SITE_ID", sort=True):
        prefix = problem_prefix.get(sid, "") if isinstance(problem_prefix, dict) else problem_prefix
        if not targets or not g[targets].notna().to_numpy().any():
            problems.append(f"{prefix}site {sid}: no values for any target "
                            f"({', '.join(TARGETS)}); skipped")
            drop.append(sid)
            continue
        msgs = [m for t in targets if (m := scale_problem(g[t].to_numpy(), t))]
        if msgs:
            problems.append(f"{prefix}site {sid}: " + "; ".join(msgs) + "; skipped")
            drop.append(sid)
    if drop:
        daily = daily[~daily["SITE_ID"].isin(drop)].reset_index(drop=True)
    hints = unit_hints(daily)  # drivers in another unit: say so, and do not use them
    for h in hints:
        daily.loc[daily["SITE_ID"] == h.site, h.variable] = np.nan
    problems.extend(group_unit_hints(hints, lambda s: problem_prefix.get(s, "") if isinstance(
        problem_prefix, dict) else problem_prefix))
    if daily.empty:
        own = f"{source}: "
        raise DataError(source, "nothing could be loaded: " + " | ".join(
            p[len(own):] if p.startswith(own) else p for p in problems))

    # catalogue
    ids = sorted(daily["SITE_ID"].unique())
    cat = pd.DataFrame({"SITE_ID": ids})
    if sites is not None and len(sites):
        cat = cat.merge(sites.drop_duplicates("SITE_ID"), on="SITE_ID", how="left")
    for c in ("LAT", "LON", "ARIDITY_INDEX"):
        if c not in cat:
            cat[c] = np.nan
        cat[c] = pd.to_numeric(cat[c], errors="coerce").astype("float64")
    cat["ARIDITY_SOURCE"] = np.where(cat["ARIDITY_INDEX"].notna(), "site table", None)
    if {"P", "TMIN", "TMAX"} <= set(daily.columns):
        lat = cat.set_index("SITE_ID")["LAT"]
        ai = site_aridity_from_daily(daily, lat)
        ai = cat["SITE_ID"].map(ai).astype("float64")
        ok = ai.notna() & np.isfinite(ai)
        cat.loc[ok, "ARIDITY_INDEX"] = ai[ok]
        cat.loc[ok, "ARIDITY_SOURCE"] = "daily P / Hargreaves PET"
    cat["ARIDITY_ZONE"] = aridity_zone(cat["ARIDITY_INDEX"].to_numpy(dtype=float))
    for c in STATIC:
        if c in cat:
            cat[c] = pd.to_numeric(cat[c], errors="coerce").astype("float64")
    sites_gdf = make_sites_frame(cat)

    before = daily
    daily, report = apply_qc(daily, qc)
    for sid, msg in missing_target_problems(before, daily, report, TARGETS):
        prefix = problem_prefix.get(sid, "") if isinstance(problem_prefix, dict) else problem_prefix
        problems.append(f"{prefix}site {sid}: {msg}")
    meta = {**meta, "qc_config": qc.to_dict(), "float_dtype": "float64"}
    return FluxDataset(sites=sites_gdf, daily=daily, name=name, source=source, synthetic=False,
                       qc=report, problems=problems, meta=meta)


def read_sites_table(path: str | Path) -> pd.DataFrame:
    """Read a site table (CSV or Parquet) into catalogue columns.

    Recognises ``SITE_ID`` (or ``SITE``...), ``LAT/LON`` (or ``LATITUDE``, ``LOCATION_LAT``...),
    ``ELEV`` (or ``ELEV_M``), ``IGBP``, ``ARIDITY_INDEX``, ``KOEPPEN``, soil and terrain
    columns (see :data:`CATALOGUE_COLUMNS`); other columns are ignored.

    Raises
    ------
    DataError
        Unreadable file, no site column, or a site listed twice.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(path, "site table does not exist")
    raw = _read_table(path)
    site_col = _find_column(raw.columns, SITE_COLUMN_NAMES)
    if site_col is None:
        raise DataError(path, f"site table has no site column (one of {', '.join(SITE_COLUMN_NAMES)})")
    sid, no_id = blank_ids(raw[site_col])
    if no_id.any():
        raise DataError(path, f"site table: {int(no_id.sum())} row(s) without a site id in column "
                              f"{site_col!r} (e.g. data row {int(np.flatnonzero(no_id)[0]) + 1})")
    out = pd.DataFrame({"SITE_ID": sid.astype(str)})
    used: set[str] = set()
    for col in raw.columns:
        canon = ALIASES.get(str(col).strip().upper())
        if canon in CATALOGUE_COLUMNS and canon not in used and col != site_col:
            out[canon] = raw[col].to_numpy()
            used.add(canon)
    dup = out["SITE_ID"].duplicated()
    if dup.any():
        raise DataError(path, f"site {out.loc[dup, 'SITE_ID'].iloc[0]} is listed more than once")
    check_site_values(out, path)
    return _clean_catalogue(out)


def _clean_catalogue(df: pd.DataFrame) -> pd.DataFrame:
    for c in df.columns:
        if c in ("SITE_ID",):
            continue
        if c in _CATALOGUE_TEXT:
            df[c] = df[c].astype(object).where(df[c].notna(), None)
        else:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
            if c in VARIABLES:
                df.loc[df[c] <= _MISSING, c] = np.nan
    return df


def _find_column(columns, names) -> str | None:
    upper = {str(c).strip().upper(): c for c in columns}
    for n in names:
        if n in upper:
            return upper[n]
    return None


# ------------------------------------------------------------ prepared layout
def load_prepared(folder: str | Path, *, qc: QCConfig | None = None) -> FluxDataset:
    """Load the prepared FLUXNET2015 layout (``daily.parquet`` + ``sites.csv`` [+ ``monthly_rs.csv``]).

    Daily columns are renamed by :data:`PREPARED_DAILY_MAP` (``GPP_DT_VUT_REF`` and ``N_HH``
    are not used). The catalogue comes from ``sites.csv`` (``ELEV_M`` -> ``ELEV``; ``IGBP``,
    ``KOEPPEN``, ``WHC_MM`` kept; ``ARIDITY_INDEX`` = CGIAR Global-AI v3.1, zones by
    :func:`fluxcore.aridity.aridity_zone`). From ``monthly_rs.csv``: daily ``LAI`` and ``EVI``
    by :func:`fluxcore.lai.monthly_to_daily` (days before MODIS get the site's mean seasonal
    cycle), ``P_MONTHLY`` and ``WS_MONTHLY`` from the monthly tower ``P_F`` and ``WS_F`` the
    same way, and site means ``MAP_MM`` (mean annual
    precipitation [mm yr-1] from the monthly tower ``P_F``) and ``WS_MEAN`` [m s-1]. Daily ``P``
    and ``WS`` stay absent: monthly means are not daily precipitation.

    Parameters
    ----------
    folder : str or Path
        The folder.
    qc : QCConfig, optional
        Quality control (default ``QCConfig()``).

    Returns
    -------
    FluxDataset
    """
    folder = Path(folder)
    qc = qc or QCConfig()
    dpath, spath, mpath = folder / "daily.parquet", folder / "sites.csv", folder / "monthly_rs.csv"
    raw = _read_table(dpath)
    missing = [c for c in ("SITE_ID", "TIMESTAMP") if c not in raw.columns]
    if missing:
        raise DataError(dpath, f"missing required column(s) {', '.join(missing)}")
    have = [c for c in PREPARED_DAILY_MAP if c in raw.columns]
    if not any(PREPARED_DAILY_MAP[c] in TARGETS for c in have):
        raise DataError(dpath, "missing required target column(s): none of GPP_NT_VUT_REF, "
                               "RECO_NT_EST, NEE_VUT_REF")
    daily = raw[["SITE_ID", "TIMESTAMP", *have]].rename(columns=PREPARED_DAILY_MAP)
    daily = daily.rename(columns={"TIMESTAMP": "DATE"})
    daily["DATE"] = parse_dates(daily["DATE"], dpath, "TIMESTAMP")
    daily["SITE_ID"] = daily["SITE_ID"].astype(str)
    _check_duplicates(daily, dpath)

    sites = read_sites_table(spath)
    meta: dict = {"layout": "prepared FLUXNET2015", "sites_table": str(spath), "files": [str(dpath)]}
    problems: list[str] = []
    no_meta = sorted(set(daily["SITE_ID"].unique()) - set(sites["SITE_ID"]))
    if no_meta:
        problems.append(f"{spath}: no row for site(s) {', '.join(no_meta[:10])}; loaded without "
                        "position or aridity")
    if mpath.exists() and not mpath.is_file():
        problems.append(f"{mpath}: is a folder, not a file; monthly data (LAI, EVI, P_F, WS_F) not used")
    if mpath.is_file():
        monthly = _read_table(mpath, problems)
        need = [c for c in ("SITE_ID", "YEAR_MONTH") if c not in monthly.columns]
        if need:
            problems.append(f"{mpath}: missing column(s) {', '.join(need)}; monthly data not used")
        else:
            monthly = _usable_monthly(monthly, mpath, problems)
            for src, var in (("LAI", "LAI"), ("EVI", "EVI"), ("P_F", "P_MONTHLY"), ("WS_F", "WS_MONTHLY")):
                if src in monthly.columns:
                    mon = monthly.assign(**{src: pd.to_numeric(monthly[src], errors="coerce")
                                            .where(lambda x: x > _MISSING)})
                    daily[var] = monthly_to_daily(mon, daily, src, climatology_fill=True).to_numpy()
                    meta[f"{var.lower()}_method"] = method_text(
                        "MODIS " + src if src in ("LAI", "EVI") else src, climatology_fill=True)
            site_means = _monthly_site_means(monthly)
            if len(site_means):
                sites = sites.drop(columns=[c for c in site_means.columns if c != "SITE_ID" and c in sites])
                sites = sites.merge(site_means, on="SITE_ID", how="left")
            meta["files"].append(str(mpath))
            meta["monthly_site_means"] = ("MAP_MM = mean of monthly P_F [mm d-1] weighted by days "
                                          "in month x 365.25; WS_MEAN = same for WS_F [m s-1]")
    return _finish(daily, sites, name=folder.resolve().name, source=str(folder), qc=qc,
                   problems=problems, meta=meta, problem_prefix=f"{dpath}: ")


def _usable_monthly(monthly: pd.DataFrame, path: Path, problems: list[str]) -> pd.DataFrame:
    """The rows of a ``monthly_rs.csv`` that can be used; each kind of dropped row or value is
    one line in ``problems`` naming the file (the monthly data are optional, so nothing raises).

    Rows without a site id or without a ``YYYYMM`` month of the years 1678-2261 are dropped, of
    a duplicated site-month the first row is kept, and text in the value columns used (``LAI,
    EVI, P_F, WS_F``) is reported before it becomes missing.
    """
    def example(mask: np.ndarray, col: str) -> str:
        i = int(np.flatnonzero(mask)[0])
        return f"e.g. {str(monthly[col].iloc[i])!r} in data row {i + 1}"

    site, no_site = blank_ids(monthly["SITE_ID"])
    if no_site.any():
        problems.append(f"{path}: {int(no_site.sum())} row(s) without a site id (data row "
                        f"{int(np.flatnonzero(no_site)[0]) + 1}); those rows are not used")
    start = month_start(monthly["YEAR_MONTH"])
    bad_month = start.isna().to_numpy() & ~no_site
    if bad_month.any():
        problems.append(f"{path}: {int(bad_month.sum())} YEAR_MONTH value(s) are not YYYYMM months of "
                        f"the years 1678-2261 ({example(bad_month, 'YEAR_MONTH')}); those rows are "
                        "not used")
    keep = ~(no_site | bad_month)
    key = pd.DataFrame({"SITE_ID": site.astype(object), "START": start})
    dup = key.duplicated().to_numpy() & keep
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        problems.append(f"{path}: {int(dup.sum())} duplicated site-month(s) (e.g. site {site.iloc[i]} in "
                        f"{pd.Timestamp(start.iloc[i]):%Y-%m}, data row {i + 1}); the first row of "
                        "each is used")
    keep &= ~dup
    out = monthly.loc[keep].assign(SITE_ID=site[keep].astype(str)).reset_index(drop=True)
    for col in ("LAI", "EVI", "P_F", "WS_F"):
        if col in monthly.columns:
            lost = not_numbers(monthly[col]) & keep
            if lost.any():
                problems.append(f"{path}: column {col}: {int(lost.sum())} non-numeric value(s) set to "
                                f"missing ({example(lost, col)})")
    return out


def _monthly_site_means(monthly: pd.DataFrame) -> pd.DataFrame:
    cols = {"P_F": "MAP_MM", "WS_F": "WS_MEAN"}
    have = [c for c in cols if c in monthly.columns]
    if not have:
        return pd.DataFrame(columns=["SITE_ID"])
    ym = pd.to_numeric(monthly["YEAR_MONTH"], errors="coerce")
    start = pd.to_datetime({"year": ym // 100, "month": ym % 100, "day": 1}, errors="coerce")
    w = start.dt.days_in_month.astype(float)
    out = {"SITE_ID": [], **{cols[c]: [] for c in have}}
    tmp = monthly[["SITE_ID", *have]].assign(_W=w.to_numpy())
    for sid, g in tmp.groupby("SITE_ID", sort=True):
        out["SITE_ID"].append(sid)
        for c in have:
            x = pd.to_numeric(g[c], errors="coerce").to_numpy(dtype=float)
            ww = g["_W"].to_numpy(dtype=float)
            ok = np.isfinite(x) & np.isfinite(ww) & (x > _MISSING)
            m = float(np.sum(x[ok] * ww[ok]) / np.sum(ww[ok])) if ok.any() else np.nan
            out[cols[c]].append(m * 365.25 if c == "P_F" else m)
    return pd.DataFrame(out)


# ------------------------------------------------------------- official DD
def find_official_files(folder: str | Path) -> list[Path]:
    """Official FLUXNET2015 (``FLX_*``) and AmeriFlux-FLUXNET (``AMF_*``) daily files in a folder."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and (_FLX_RE.match(p.name) or _AMF_RE.match(p.name)))


def _pick_official(files: list[Path]) -> tuple[dict[str, Path], list[str]]:
    """One file per site: FULLSET over SUBSET, then the newest processing version/release."""
    by_site: dict[str, list[tuple[tuple, Path]]] = {}
    for p in files:
        m = _FLX_RE.match(p.name) or _AMF_RE.match(p.name)
        key = (m["set"] == "FULLSET", int(m["ver"]), int(m["rel"]), p.name.startswith("AMF_"))
        by_site.setdefault(m["site"], []).append((key, p))
    chosen, problems = {}, []
    for site, lst in sorted(by_site.items()):
        lst.sort(key=lambda kp: kp[0], reverse=True)
        chosen[site] = lst[0][1]
        for _, p in lst[1:]:
            problems.append(f"{p}: another daily file of site {site} is used ({lst[0][1].name}); skipped")
    return chosen, problems


def read_official_file(
    path: str | Path, site: str | None = None, problems: list[str] | None = None,
) -> pd.DataFrame:
    """Read one official FLUXNET2015 / ONEFlux daily (DD) file into canonical columns.

    ``-9999`` is missing; ``TIMESTAMP`` is ``YYYYMMDD``; columns by :data:`OFFICIAL_DD_MAP`
    (TMIN/TMAX are not in DD files and stay absent). ``NEE_VUT_REF_QC`` (daily fraction of
    measured and good-quality gap-filled half-hours) becomes ``QC_NEE_FRAC``.

    A last line cut short (truncated file) is dropped and reported in ``problems`` when a list
    is given (else it raises); any other line with the wrong number of fields raises.

    Raises
    ------
    DataError
        Unreadable file, a malformed line, no TIMESTAMP or target column, bad or duplicated
        dates, no target value.
    """
    path = Path(path)
    if site is None:
        m = _FLX_RE.match(path.name) or _AMF_RE.match(path.name)
        site = m["site"] if m else path.stem
    raw = _read_table(path, problems, na_values=["-9999", "-9999.0", "-9999.00"])
    if "TIMESTAMP" not in raw.columns:
        hint = " (half-hourly/hourly file?)" if "TIMESTAMP_START" in raw.columns else ""
        raise DataError(path, f"missing required column TIMESTAMP{hint}")
    have = [c for c in OFFICIAL_DD_MAP if c in raw.columns]
    if not any(OFFICIAL_DD_MAP[c] in TARGETS for c in have):
        raise DataError(path, "missing required target column(s): none of GPP_NT_VUT_REF, "
                              "RECO_NT_VUT_REF, NEE_VUT_REF")
    df = raw[["TIMESTAMP", *have]].rename(columns=OFFICIAL_DD_MAP)
    df.insert(0, "SITE_ID", site)
    df = df.rename(columns={"TIMESTAMP": "DATE"})
    df["DATE"] = parse_dates(df["DATE"], path, "TIMESTAMP")
    _check_duplicates(df, path)
    t = [c for c in TARGETS if c in df.columns]
    vals = df[t].apply(pd.to_numeric, errors="coerce")
    if not (vals.notna() & (vals > _MISSING)).to_numpy().any():
        raise DataError(path, f"all values of the targets ({', '.join(t)}) are missing")
    return df


def _resolve_sites_table(folder: Path, sites_table: str | Path | None) -> Path | None:
    if sites_table is not None:
        return Path(sites_table).expanduser()
    for cand in (folder / "sites.csv", folder.resolve().parent / "sites.csv"):
        if cand.is_file():
            return cand
    return None


def load_official(
    folder: str | Path,
    *,
    qc: QCConfig | None = None,
    sites_table: str | Path | None = None,
) -> FluxDataset:
    """Load a folder of official FLUXNET2015 / AmeriFlux-FLUXNET daily (DD) files.

    Targets ``GPP_NT_VUT_REF, RECO_NT_VUT_REF, NEE_VUT_REF``; drivers ``TA_F, SW_IN_F,
    VPD_F, P_F, WS_F``. One file per site (FULLSET before SUBSET, then the newest version;
    others are listed in ``problems``). Site positions, IGBP, elevation and aridity index
    come from a site table: ``sites_table`` if given, else ``sites.csv`` in the folder, else
    ``sites.csv`` in the parent folder (the one used is ``dataset.meta["sites_table"]``,
    None when none was found: sites then have no position and are listed by
    ``dataset.summary()["sites_without_position"]``). The aridity index is computed from
    daily P and Hargreaves PET where the data have P, TMIN, TMAX and a latitude (never for
    plain DD files, which lack TMIN/TMAX), else taken from the site table.

    Parameters
    ----------
    folder : str or Path
        Folder with the DD files.
    qc : QCConfig, optional
        Quality control (default ``QCConfig()``).
    sites_table : str or Path, optional
        Site table (see :func:`read_sites_table`).

    Returns
    -------
    FluxDataset
    """
    folder = Path(folder)
    qc = qc or QCConfig()
    files = find_official_files(folder)
    if not files:
        raise DataError(folder, "no FLX_*_FLUXNET2015_*_DD_*.csv or AMF_*_FLUXNET_*_DD_*.csv files")
    chosen, problems = _pick_official(files)
    frames = []
    for site, p in chosen.items():
        try:
            frames.append(read_official_file(p, site, problems))
        except DataError as exc:
            problems.append(str(exc))
    if not frames:
        raise DataError(folder, "no daily file could be loaded: " + " | ".join(problems))
    daily = pd.concat(frames, ignore_index=True)
    st_path = _resolve_sites_table(folder, sites_table)
    sites = read_sites_table(st_path) if st_path is not None else None
    meta = {"layout": "official FLUXNET2015 DD", "files": [str(chosen[s]) for s in chosen],
            "sites_table": None if st_path is None else str(st_path)}
    if sites is not None:
        miss = sorted(set(daily["SITE_ID"]) - set(sites["SITE_ID"]))
        if miss:
            problems.append(f"{st_path}: no row for site(s) {', '.join(miss)}; loaded without "
                            "position or aridity")
    return _finish(daily, sites, name=folder.resolve().name, source=str(folder), qc=qc,
                   problems=problems, meta=meta,
                   problem_prefix={s: f"{chosen[s]}: " for s in chosen})


# ------------------------------------------------------------------ tidy file
def parse_column_map(spec: str | dict | None) -> dict[str, str] | None:
    """Column map from ``"a=TA,b=GPP"``, a YAML/JSON file path, or a dict.

    Raises
    ------
    ConfigError
        Malformed specification or unreadable file.
    """
    if spec is None or isinstance(spec, dict):
        return spec
    spec = str(spec).strip()
    p = Path(spec).expanduser()
    if p.suffix.lower() in (".yaml", ".yml", ".json") or p.is_file():
        if not p.is_file():
            raise ConfigError(f"column map file {p} does not exist")
        try:
            text = p.read_text(encoding="utf-8")
            if p.suffix.lower() == ".json":
                d = json.loads(text)
            else:
                import yaml

                d = yaml.safe_load(text)
        except Exception as exc:
            raise ConfigError(f"column map file {p} cannot be parsed: {exc}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"column map file {p} must hold a mapping their_name: canonical_name")
        return {str(k): str(v) for k, v in d.items()}
    out = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"column map entry {part!r} must look like their_name=CANONICAL")
        k, v = part.split("=", 1)
        k, v = k.strip(), v.strip()
        if k in out and out[k] != v:
            raise ConfigError(f"column map: column {k!r} is mapped twice ({out[k]} and {v}); map it once")
        out[k] = v
    return out


def load_tidy(
    path: str | Path,
    *,
    qc: QCConfig | None = None,
    sites_table: str | Path | None = None,
    column_map: dict | None = None,
) -> FluxDataset:
    """Load a tidy CSV/Parquet file: one row per site-day.

    Columns: a site column (``SITE_ID``/``SITE``/...), a date column (``DATE``/``TIMESTAMP``/
    ...; ``YYYYMMDD`` or ISO), and variables under canonical names (``TA, GPP``...) or
    FLUXNET names (``TA_F, GPP_NT_VUT_REF, RECO_NT_VUT_REF``...; see :data:`ALIASES`,
    case-insensitive), or renamed by ``column_map``. Per-site columns (``LAT, LON, IGBP,
    ARIDITY_INDEX, ELEV, SLOPE``... see :data:`CATALOGUE_COLUMNS`) go to the catalogue
    (first non-missing value per site); ``sites_table`` fills what the file lacks.
    Unrecognised columns are ignored and listed in ``dataset.meta["ignored_columns"]``.

    Raises
    ------
    DataError
        Unreadable file, no site/date/target column, bad or duplicated dates, no site loads.
    ConfigError
        ``column_map`` names a non-canonical target.
    """
    path = Path(path)
    qc = qc or QCConfig()
    if path.suffix.lower() not in (".csv", ".parquet", ".pq", ".gz", ".txt"):
        raise DataError(path, "unsupported file type: give a .csv or .parquet file or a data folder")
    problems: list[str] = []
    raw = _read_table(path, problems)
    raw.columns = [str(c).strip() for c in raw.columns]
    column_map = parse_column_map(column_map) or {}
    if len(set(column_map.values())) < len(column_map):
        raise ConfigError("column map: two columns are mapped to the same canonical name")
    allowed = {"SITE_ID", "DATE", *DAILY_VALUE_COLUMNS, *CATALOGUE_COLUMNS}
    for their, canon in column_map.items():
        if canon not in allowed:
            raise ConfigError(f"column map: {canon!r} is not a canonical name "
                              f"(choose from {', '.join(sorted(allowed))})")
        if their not in raw.columns:
            raise DataError(path, f"column {their!r} named in the column map is not in the file "
                                  f"(columns: {', '.join(map(str, raw.columns[:20]))})")
    rename: dict[str, str] = dict(column_map)
    claimed = set(column_map.values())
    site_col = next((k for k, v in column_map.items() if v == "SITE_ID"), None) or \
        _find_column([c for c in raw.columns if c not in column_map], SITE_COLUMN_NAMES)
    date_col = next((k for k, v in column_map.items() if v == "DATE"), None) or \
        _find_column([c for c in raw.columns if c not in column_map], DATE_COLUMN_NAMES)
    missing = []
    if site_col is None:
        missing.append(f"a site column ({'/'.join(SITE_COLUMN_NAMES)})")
    if date_col is None:
        missing.append(f"a date column ({'/'.join(DATE_COLUMN_NAMES)})")
    if missing:
        raise DataError(path, f"missing required column(s): {' and '.join(missing)}; name them in "
                              "the column map (--columns their_name=SITE_ID,...)")
    rename[site_col], rename[date_col] = "SITE_ID", "DATE"
    claimed |= {"SITE_ID", "DATE"}
    ignored = []
    auto: dict[str, str] = {}  # canonical name -> the column recognised as it
    for col in raw.columns:
        if col in rename:
            continue
        canon = ALIASES.get(col.upper())
        if canon and canon not in claimed:
            rename[col] = canon
            claimed.add(canon)
            auto[canon] = col
        else:
            ignored.append(col)
            if canon in auto:  # two columns mean the same variable: say which one is used
                problems.append(f"{path}: columns {auto[canon]!r} and {col!r} both give {canon}; "
                                f"{auto[canon]!r} is used, {col!r} is ignored (map the one you "
                                f"want with --columns {col}={canon})")
            dup = re.fullmatch(r"(.+)\.[1-9]\d*", col)
            if dup and dup[1] in raw.columns and dup[1] in rename:  # pandas renames a repeated name
                problems.append(f"{path}: column {dup[1]!r} appears more than once in the header; "
                                f"the first is used, the repeat ({col!r}) is ignored")
    df = raw[list(rename)].rename(columns=rename)
    if not any(t in df.columns for t in TARGETS):
        raise DataError(path, "missing required target column: none of GPP, ER, NEE (or "
                              "GPP_NT_VUT_REF, RECO_NT_VUT_REF, NEE_VUT_REF); map yours with "
                              "--columns their_name=GPP")
    ids, no_id = blank_ids(df["SITE_ID"])
    if no_id.any():
        raise DataError(path, f"missing site id in data row {int(np.flatnonzero(no_id)[0]) + 1}")
    df["SITE_ID"] = ids.astype(str)
    df["DATE"] = parse_dates(df["DATE"], path, date_col)
    _check_duplicates(df, path)
    t = [c for c in TARGETS if c in df.columns]
    tv = df[t].apply(pd.to_numeric, errors="coerce")
    if not (tv.notna() & (tv > _MISSING)).to_numpy().any():
        raise DataError(path, f"all values of the targets ({', '.join(t)}) are missing")

    cat_cols = [c for c in CATALOGUE_COLUMNS if c in df.columns]
    sites = None
    if cat_cols:
        check_site_values(df[["SITE_ID", *cat_cols]], path)
        sites = df[["SITE_ID", *cat_cols]].groupby("SITE_ID", sort=True).first().reset_index()
        sites = _clean_catalogue(sites)
    st_path = Path(sites_table).expanduser() if sites_table is not None else None
    if st_path is not None:
        table = read_sites_table(st_path)
        if sites is None:
            sites = table
        else:  # values in the file win, the table fills the rest
            sites = sites.set_index("SITE_ID").combine_first(table.set_index("SITE_ID")).reset_index()
            sites = sites[sites["SITE_ID"].isin(df["SITE_ID"].unique())]
    meta = {"layout": "tidy file", "files": [str(path)], "columns": rename,
            "ignored_columns": ignored, "sites_table": None if st_path is None else str(st_path)}
    return _finish(df, sites, name=path.stem, source=str(path), qc=qc, problems=problems, meta=meta,
                   problem_prefix=f"{path}: ")


__all__ = [
    "load_dataset", "load_prepared", "load_official", "load_tidy", "read_sites_table",
    "read_official_file", "find_official_files", "parse_dates", "parse_column_map",
    "scale_problem", "PREPARED_DAILY_MAP", "OFFICIAL_DD_MAP", "ALIASES",
]
