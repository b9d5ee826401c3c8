"""Checks that loaders run so that nothing wrong gets through silently.

Every check either raises :class:`fluxcore.errors.DataError` (one line naming the file,
the column and the first bad row) or returns lines for ``dataset.problems``:

:func:`scan_csv_lines`
    rows of a CSV file with the wrong number of fields (a file cut in the middle of its last
    line, a value holding an unquoted separator, ...).
:func:`check_site_values`
    coordinates, aridity index, elevation, terrain and soil columns of a site table (or of
    the per-site columns of a tidy file) are numbers, finite and in their range.
:func:`unit_hints`
    daily drivers whose values look like another unit (kelvin or degF temperatures, VPD in
    kPa or Pa, SW_IN in MJ m-2 d-1 or J m-2 d-1); fluxes are judged by
    :func:`fluxcore.sources.scale_problem`.
:func:`missing_target_problems`
    a target (GPP, ER, NEE) that a dataset has but one site lacks entirely.

Non-finite daily values (``inf``, ``-inf``) are removed and counted by quality control
(reason ``not_finite``, :func:`fluxcore.qc.apply_qc`). Details: ``docs/data.md``,
section "What is checked".
"""

from __future__ import annotations

import csv
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

#: FLUXNET missing-value marker: -9999 (anything at or below -9990 is missing).
MISSING_AT_OR_BELOW = -9990.0

#: Valid range [min, max] and unit of numeric per-site columns. ARIDITY_INDEX must also be
#: strictly positive (checked separately).
SITE_RANGES: dict[str, tuple[float, float, str]] = {
    "LAT": (-90.0, 90.0, "deg"),
    "LON": (-180.0, 360.0, "deg"),
    "ARIDITY_INDEX": (0.0, 100.0, "-"),
    "ELEV": (-500.0, 9000.0, "m"),
    "SLOPE": (0.0, 90.0, "deg"),
    "ASPECT": (0.0, 360.0, "deg"),
    "CLAY": (0.0, 100.0, "%"),
    "SAND": (0.0, 100.0, "%"),
    "SILT": (0.0, 100.0, "%"),
    "WHC_MM": (0.0, 5000.0, "mm"),
    "MAP_MM": (0.0, 15000.0, "mm yr-1"),
}
SOIL_COLUMNS: tuple[str, ...] = ("CLAY", "SAND", "SILT")

#: Fewest finite values of a site and variable that :func:`unit_hint` judges: kelvin and
#: degF are unambiguous from a few days; VPD and SW_IN need about a year (a winter alone at
#: a boreal tower has VPD below 1 hPa and SW_IN below 40 W m-2).
MIN_VALUES_FOR_UNIT_HINT: dict[str, int] = {"TA": 10, "TMIN": 10, "TMAX": 10, "VPD": 300,
                                            "SW_IN": 300}


# ------------------------------------------------------------------ CSV rows
@dataclass(frozen=True)
class CsvScan:
    """Result of :func:`scan_csv_lines`.

    Parameters
    ----------
    n_fields : int
        Fields in the header line.
    n_records : int
        Non-blank data lines.
    cut_last : str or None
        Problem text when the last line is cut short (the file does not end with a line
        break and its last line has fewer fields than the header); that line should be dropped.
    """

    n_fields: int
    n_records: int
    cut_last: str | None


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rt", newline="", encoding="utf-8", errors="replace")
    return open(path, newline="", encoding="utf-8", errors="replace")  # noqa: SIM115


def _ends_with_newline(path: Path) -> bool:
    if path.suffix.lower() == ".gz":
        with gzip.open(path, "rb") as fh:
            data = fh.read()
        return data.endswith((b"\n", b"\r"))
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) in (b"\n", b"\r")


def sniff_separator(path: str | Path) -> str:
    """``";"`` when the header line has semicolons and no commas, else ``","``."""
    try:
        with _open_text(Path(path)) as fh:
            head = fh.readline()
    except (OSError, EOFError, gzip.BadGzipFile):
        return ","
    return ";" if ";" in head and "," not in head else ","


def sniff_decimal(path: str | Path, sep: str) -> str:
    """``","`` for a ``;``-separated file whose first data lines have decimal commas, else ``"."``."""
    if sep != ";":
        return "."
    try:
        with _open_text(Path(path)) as fh:
            lines = [fh.readline() for _ in range(21)][1:]
    except (OSError, EOFError, gzip.BadGzipFile):
        return "."
    return "," if any(re.search(r"\d,\d", ln) for ln in lines) else "."


def scan_csv_lines(path: str | Path, sep: str = ",") -> CsvScan | None:
    """Check that every data line of a CSV file has as many fields as its header.

    Parameters
    ----------
    path : str or Path
        The CSV file (plain or ``.gz``).
    sep : str
        Field separator.

    Returns
    -------
    CsvScan or None
        None when the file cannot be scanned as text (the reader then reports it).

    Raises
    ------
    DataError
        A line other than a cut-short last line has the wrong number of fields; the message
        names the first such line (file line number, header = line 1) and how many there are.
    """
    path = Path(path)
    bad: list[tuple[int, int]] = []
    n_records = 0
    last: tuple[int, int] | None = None
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh, delimiter=sep)
            header = next(reader, None)
            if header is None:
                return None
            n_fields = len(header)
            for rec in reader:
                if not rec:
                    continue
                n_records += 1
                last = (reader.line_num, len(rec))
                if len(rec) != n_fields:
                    bad.append(last)
    except (OSError, EOFError, csv.Error, gzip.BadGzipFile):
        return None
    cut_last = None
    if bad and last is not None and bad[-1] == last and last[1] < n_fields \
            and not _ends_with_newline(path):
        bad.pop()
        cut_last = (f"the last line (line {last[0]}) is cut short: {last[1]} of {n_fields} fields "
                    "and no line break at the end (the file seems truncated); that line is not used")
    if bad:
        line, k = bad[0]
        more = f" ({len(bad)} lines have the wrong number of fields)" if len(bad) > 1 else ""
        why = ("an unquoted value holding the separator (e.g. a decimal comma)?"
               if k > n_fields else "a damaged or truncated line?")
        raise DataError(path, f"line {line} has {k} fields but the header has {n_fields}{more}; "
                              f"{why}")
    return CsvScan(n_fields=n_fields, n_records=n_records, cut_last=cut_last)


# ------------------------------------------------------------- cell checks
def not_numbers(values: pd.Series) -> np.ndarray:
    """Rows whose value is text that is not a number (numbers and blank cells are False).

    Such a value would silently become missing under ``pd.to_numeric(errors="coerce")``.
    """
    if values.dtype.kind in "fiub":
        return np.zeros(len(values), dtype=bool)
    text = values.astype("string").str.strip()
    return (pd.to_numeric(values, errors="coerce").isna() & text.notna() & (text != "")).to_numpy()


def blank_ids(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Site ids with surrounding spaces removed (pandas string dtype), and the rows without one
    (missing or blank)."""
    ids = values.astype("string").str.strip()
    return ids, (ids.isna() | (ids == "")).to_numpy()


# ---------------------------------------------------------------- site values
def _row_text(i: int, sites: pd.Series | None) -> str:
    site = f", site {sites.iloc[i]}" if sites is not None else ""
    return f"data row {i + 1}{site}"


def check_site_values(df: pd.DataFrame, path: str | Path, *, site_column: str = "SITE_ID") -> None:
    """Range-check the numeric per-site columns of a table (raw values, one row per line).

    Checked columns (those present): see :data:`SITE_RANGES`. A value must be a number
    (text is an error; empty cells and the FLUXNET marker -9999 are missing and allowed),
    finite, and inside its range; ``ARIDITY_INDEX`` must be > 0. Soil columns ``CLAY, SAND,
    SILT`` are percent [0-100]: when all three are given and every row sums to about 1 (or
    every value is at most 1 over at least five rows), they look like fractions and that is
    an error too.

    Parameters
    ----------
    df : pandas.DataFrame
        Canonical column names, raw values; row ``i`` is data row ``i + 1`` of the file.
    path : str or Path
        File named in the message.
    site_column : str
        Column with site ids (quoted in the message when present).

    Raises
    ------
    DataError
        ``"<path>: column LAT: 2 value(s) outside -90..90 deg (first: 999.0 in data row 3,
        site XX-Aaa)"`` and the like; the first bad column only.
    """
    sites = df[site_column].reset_index(drop=True) if site_column in df.columns else None
    for col, (lo, hi, unit) in SITE_RANGES.items():
        if col not in df.columns:
            continue
        raw = df[col].reset_index(drop=True)
        num = pd.to_numeric(raw, errors="coerce").astype("float64")
        not_number = not_numbers(raw)
        if not_number.any():
            i = int(np.flatnonzero(not_number)[0])
            raise DataError(path, f"column {col}: {int(not_number.sum())} value(s) are not numbers "
                                  f"(first: {str(raw.iloc[i])!r} in {_row_text(i, sites)})")
        x = num.to_numpy()
        known = ~np.isnan(x) & ~(np.isfinite(x) & (x <= MISSING_AT_OR_BELOW))
        nonfinite = known & ~np.isfinite(x)
        if nonfinite.any():
            i = int(np.flatnonzero(nonfinite)[0])
            raise DataError(path, f"column {col}: {int(nonfinite.sum())} value(s) are not finite "
                                  f"(first: {x[i]} in {_row_text(i, sites)})")
        with np.errstate(invalid="ignore"):
            out = known & ((x < lo) | (x > hi) | ((x <= 0) if col == "ARIDITY_INDEX" else False))
        if out.any():
            i = int(np.flatnonzero(out)[0])
            rng = (f"0 < {col} <= {hi:g} (P / PET is positive)" if col == "ARIDITY_INDEX"
                   else f"{lo:g}..{hi:g} {unit}")
            hint = ""
            if col == "LAT" and "LON" in df.columns:
                lon = pd.to_numeric(df["LON"].reset_index(drop=True), errors="coerce").iloc[i]
                if abs(x[i]) <= 180 and np.isfinite(lon) and abs(lon) <= 90:
                    hint = "; are LAT and LON swapped?"
            raise DataError(path, f"column {col}: {int(out.sum())} value(s) outside {rng} "
                                  f"(first: {x[i]:g} in {_row_text(i, sites)}){hint}")
    _check_soil_fractions(df, path)


def _check_soil_fractions(df: pd.DataFrame, path: str | Path) -> None:
    have = [c for c in SOIL_COLUMNS if c in df.columns]
    if not have:
        return
    vals = df[have].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
    vals[vals <= MISSING_AT_OR_BELOW] = np.nan
    msg = None
    if len(have) == 3:
        complete = np.isfinite(vals).all(axis=1)
        sums = vals[complete].sum(axis=1)
        if sums.size and np.all((sums > 0.9) & (sums < 1.1)):
            msg = (f"soil columns CLAY + SAND + SILT sum to about 1 in every row (first: "
                   f"{sums[0]:.3g}): they look like fractions 0-1; give percent 0-100 "
                   "(multiply by 100)")
    if msg is None:
        for k, c in enumerate(have):
            v = vals[:, k][np.isfinite(vals[:, k])]
            if v.size >= 5 and np.all(v <= 1.0) and np.any(v > 0):
                msg = (f"column {c}: every value is at most 1 (max {v.max():.3g}) over {v.size} "
                       "rows: it looks like a fraction 0-1; give percent 0-100 (multiply by 100)")
                break
    if msg:
        raise DataError(path, msg)


# ----------------------------------------------------------------- unit hints
@dataclass(frozen=True)
class UnitHint:
    """A daily driver of one site that looks like it is in another unit.

    Parameters
    ----------
    site : str
        Site id.
    variable : str
        Canonical variable.
    unit : str
        The likely unit (``"kelvin"``, ``"kPa"``...).
    evidence : str
        The figures that tell (``"median 283.2"``).
    advice : str
        How to convert to the canonical unit.
    """

    site: str
    variable: str
    unit: str
    evidence: str
    advice: str

    @property
    def message(self) -> str:
        """``"TA values look like kelvin (median 283.2): convert to degC (subtract 273.15)"``."""
        return f"{self.variable} values look like {self.unit} ({self.evidence}): {self.advice}"


def saturation_vapour_pressure(ta) -> np.ndarray:
    """Saturation vapour pressure over water [hPa] at air temperature ``ta`` [degC] (Magnus).

    ``es = 6.112 exp(17.67 T / (T + 243.5))`` (Bolton 1980, Monthly Weather Review 108,
    1046-1053).
    """
    t = np.asarray(ta, dtype=float)
    return 6.112 * np.exp(17.67 * t / (t + 243.5))


def _temperature_hint(x: np.ndarray, ta: np.ndarray | None) -> tuple[str, str, str] | None:
    p01, med, p99 = np.quantile(x, [0.01, 0.5, 0.99])
    if p01 > 180.0 and 200.0 < med < 340.0 and p99 < 350.0:
        return "kelvin", f"median {med:.1f}", "convert to degC (subtract 273.15)"
    if 55.0 < p99 <= 140.0 and p01 > -80.0:
        return ("degrees Fahrenheit", f"99th percentile {p99:.1f}, above any daily mean in degC",
                "convert to degC ((F - 32) / 1.8)")
    return None


def _vpd_hint(x: np.ndarray, ta: np.ndarray | None) -> tuple[str, str, str] | None:
    p99 = float(np.quantile(x, 0.99))
    if ta is not None:
        ok = np.isfinite(ta)
        if ok.sum() >= MIN_VALUES_FOR_UNIT_HINT["VPD"]:
            r99 = float(np.quantile(x[ok] / saturation_vapour_pressure(ta[ok]), 0.99))
            if r99 < 0.1:
                return ("kPa", f"99th percentile of VPD / saturation vapour pressure at TA in hPa "
                               f"is {r99:.3g}; 0.21-1.6 at the 204 FLUXNET2015 towers",
                        "FLUXNET VPD is in hPa: multiply by 10")
    if 0.0 < p99 < 1.0:
        return ("kPa", f"99th percentile {p99:.3g}; 2.5-50 hPa at the FLUXNET2015 towers",
                "FLUXNET VPD is in hPa: multiply by 10")
    if 100.0 < p99 <= 10000.0:
        return "Pa", f"99th percentile {p99:.4g}, too large for hPa", "divide by 100"
    return None


def _sw_hint(x: np.ndarray, ta: np.ndarray | None) -> tuple[str, str, str] | None:
    p99 = float(np.quantile(x, 0.99))
    if 0.0 < p99 < 40.0:
        return ("MJ m-2 d-1", f"99th percentile {p99:.3g}; 256-421 W m-2 at the FLUXNET2015 "
                              "towers", "multiply by 11.574 to get a daily mean in W m-2")
    if p99 > 500.0:
        cands = {"kJ m-2 d-1": 86.4, "J m-2 d-1": 86400.0, "W h m-2 d-1": 24.0}
        best = min(cands, key=lambda k: abs(np.log(p99 / (330.0 * cands[k]))))
        return (best, f"99th percentile {p99:.4g}, too large for a daily mean in W m-2",
                f"divide by {cands[best]:g}")
    return None


_HINTS = {"TA": _temperature_hint, "TMIN": _temperature_hint, "TMAX": _temperature_hint,
          "VPD": _vpd_hint, "SW_IN": _sw_hint}


def unit_hint(values, var: str, ta=None, site: str = "") -> UnitHint | None:
    """Say whether a daily driver looks like it is in another unit (None when plausible).

    Judged on robust quantiles of the finite values when there are at least
    :data:`MIN_VALUES_FOR_UNIT_HINT` of them (10 for temperatures, 300 for VPD and SW_IN),
    only where the ranges do not overlap:

    * ``TA, TMIN, TMAX`` [degC]: kelvin (1st percentile > 180 and median 200-340) or
      degF (99th percentile 55-140, no daily mean in degC gets there);
    * ``VPD`` [hPa]: kPa when the 99th percentile of VPD / es(TA) is below 0.1 (VPD cannot
      exceed the saturation vapour pressure es; 0.21-1.6 at the 204 FLUXNET2015 towers in
      hPa, at most 0.17 in kPa), or without TA when the 99th percentile of VPD is below 1
      (the most humid tower, SJ-Adv, has 2.5 hPa); Pa when it is 100-10000;
    * ``SW_IN`` [W m-2, daily mean]: MJ m-2 d-1 when the 99th percentile is below 40 (the
      towers have 256-421), kJ / J / W h m-2 d-1 when above 500.

    Fluxes are judged by :func:`fluxcore.sources.scale_problem` (daily means in
    umol m-2 s-1 cannot be told from gC m-2 d-1 by range: 1 umol m-2 s-1 = 1.0368 gC m-2 d-1).

    Parameters
    ----------
    values : array_like
        The values of one site.
    var : str
        Canonical variable name.
    ta : array_like, optional
        Air temperature [degC] of the same days (used for VPD).
    site : str
        Site id stored in the result.

    Returns
    -------
    UnitHint or None
    """
    fn = _HINTS.get(var)
    if fn is None:
        return None
    x = np.asarray(values, dtype=float)
    t = None if ta is None else np.asarray(ta, dtype=float)
    fin = np.isfinite(x)
    if fin.sum() < MIN_VALUES_FOR_UNIT_HINT[var]:
        return None
    found = fn(x[fin], None if t is None else t[fin])
    return None if found is None else UnitHint(site, var, *found)


def unit_hints(daily: pd.DataFrame) -> list[UnitHint]:
    """Unit hints of every site and daily driver of a table (see :func:`unit_hint`).

    Temperatures are judged first; VPD uses TA only where TA itself got no hint.

    Parameters
    ----------
    daily : pandas.DataFrame
        ``SITE_ID`` and canonical variables.

    Returns
    -------
    list of UnitHint
    """
    out: list[UnitHint] = []
    cols = [c for c in _HINTS if c in daily.columns]
    if not cols:
        return out
    for sid, g in daily.groupby("SITE_ID", sort=True):
        ta_hinted = False
        for c in cols:
            ta = None
            if c == "VPD" and "TA" in g.columns and not ta_hinted:
                ta = g["TA"].to_numpy(dtype=float)
            h = unit_hint(g[c].to_numpy(dtype=float), c, ta=ta, site=str(sid))
            if h:
                out.append(h)
                ta_hinted |= c == "TA"
    return out


def group_unit_hints(hints: list[UnitHint], prefix_of) -> list[str]:
    """One problem line per file prefix, variable and likely unit, naming the sites.

    Parameters
    ----------
    hints : list of UnitHint
    prefix_of : callable
        ``site -> "<file>: "`` (the start of the problem line).

    Returns
    -------
    list of str
        ``"<file>: TA values look like kelvin at 2 site(s): XX-Aaa, XX-Bbb (XX-Aaa: median
        272.0): convert to degC (subtract 273.15); TA not used at these sites"``.
    """
    groups: dict[tuple[str, str, str], list[UnitHint]] = {}
    for h in hints:
        groups.setdefault((prefix_of(h.site), h.variable, h.unit), []).append(h)
    lines = []
    for (prefix, var, unit), hs in groups.items():
        names = ", ".join(h.site for h in hs[:10]) + (" ..." if len(hs) > 10 else "")
        lines.append(f"{prefix}{var} values look like {unit} at {len(hs)} site(s): {names} "
                     f"({hs[0].site}: {hs[0].evidence}): {hs[0].advice}; {var} not used at "
                     "these sites")
    return lines


# ------------------------------------------------------------ missing targets
def missing_target_problems(
    before_qc: pd.DataFrame,
    after_qc: pd.DataFrame,
    report: pd.DataFrame,
    targets: tuple[str, ...] | list[str],
) -> list[tuple[str, str]]:
    """Sites at which a target of the dataset is entirely missing.

    A target counts when the dataset has its column with at least one value before quality
    control; a site lacking it entirely (before QC, or after QC removed all of its values) is
    reported.

    Parameters
    ----------
    before_qc, after_qc : pandas.DataFrame
        The daily table before and after :func:`fluxcore.qc.apply_qc` (same rows).
    report : pandas.DataFrame
        The QC report (reasons quoted when QC removed the values).
    targets : sequence of str
        Target names to check.

    Returns
    -------
    list of (site, message)
        ``("US-Xyz", "GPP entirely missing (365 days)")`` or ``"... entirely missing after
        quality control (365 days; removed: low_measured_fraction 120)"``.
    """
    out = []
    have = [t for t in targets if t in before_qc.columns and before_qc[t].notna().any()]
    if not have or after_qc.empty:
        return out
    n_days = after_qc.groupby("SITE_ID", sort=True).size()
    n_after = after_qc.groupby("SITE_ID", sort=True)[have].count()
    n_before = before_qc.groupby("SITE_ID", sort=True)[have].count()
    for t in have:
        for sid in n_after.index[n_after[t] == 0]:
            days = int(n_days[sid])
            if int(n_before.loc[sid, t]) == 0:
                out.append((str(sid), f"{t} entirely missing ({days} days)"))
                continue
            rep = report[(report["SITE_ID"] == sid) & (report["variable"] == t)
                         & (report["n_removed"] > 0)]
            why = ", ".join(f"{r} {int(n)}" for r, n in zip(rep["reason"], rep["n_removed"], strict=True))
            out.append((str(sid), f"{t} entirely missing after quality control ({days} days; "
                                  f"removed: {why})"))
    return out


__all__ = [
    "SITE_RANGES", "SOIL_COLUMNS", "CsvScan", "scan_csv_lines", "sniff_separator", "sniff_decimal",
    "check_site_values", "UnitHint", "unit_hint", "unit_hints", "group_unit_hints",
    "saturation_vapour_pressure", "missing_target_problems", "not_numbers", "blank_ids",
]
