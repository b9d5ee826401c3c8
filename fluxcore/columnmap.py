"""Match the columns of an uploaded table to fluxcore's names, and prepare the upload for loading.

A front end shows one selection per canonical name (``SITE_ID``, ``DATE``, targets, drivers,
site columns) prefilled by :func:`suggest_column_map`, turns the user's choices into a
``{their_name: canonical_name}`` map with :func:`mapping_from_choices`, and writes one
self-contained tidy file with :func:`prepare_upload` (the map applied and an uploaded site
catalogue merged in), so that the file alone is a data source (``load_dataset(path)``) that
a run can name.

Suggestions, strongest first: the names :func:`fluxcore.sources.load_tidy` recognises by
itself (canonical and FLUXNET names, :data:`fluxcore.sources.ALIASES`); then common
synonyms (:data:`SYNONYMS`: ``temperature`` -> ``TA``, ``precip`` -> ``P``,
``reco`` -> ``ER``...) matched on the whole name, its first word or any longer word; then
names similar to a synonym (``difflib`` ratio >= 0.8). Each column is suggested at most once,
and only for the name it fits best (a second ``temperature`` column is not offered as ``TMIN``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import ConfigError, DataError
from .variables import DAILY_DRIVERS, TARGETS, VARIABLES

#: Site columns a tidy file (or site catalogue) may carry.
SITE_FIELDS: tuple[str, ...] = ("LAT", "LON", "IGBP", "ARIDITY_INDEX", "ELEV")
#: Canonical names offered for mapping, by group (shown in this order).
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "required": ("SITE_ID", "DATE"),
    "targets": TARGETS,
    "drivers": DAILY_DRIVERS,
    "site": SITE_FIELDS,
}
FIELDS: tuple[str, ...] = tuple(f for g in FIELD_GROUPS.values() for f in g)

#: Lower-case synonyms (words joined by ``_``) of each canonical name.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "SITE_ID": ("site_id", "site", "siteid", "site_code", "station", "station_id", "tower",
                "tower_id", "plot", "id"),
    "DATE": ("date", "day", "time", "timestamp", "datetime", "date_time", "yyyymmdd"),
    "GPP": ("gpp", "gross_primary_production", "gross_primary_productivity", "gep"),
    "ER": ("er", "reco", "r_eco", "resp", "respiration", "ecosystem_respiration", "ter"),
    "NEE": ("nee", "net_ecosystem_exchange", "co2_flux", "fc"),
    "TA": ("ta", "tair", "t_air", "air_temp", "air_temperature", "temp", "temperature",
           "tavg", "tmean", "t_mean", "t2m", "tas"),
    "TMIN": ("tmin", "t_min", "ta_min", "tair_min", "min_temp", "temp_min", "tasmin", "tmn",
             "min_temperature", "temperature_min"),
    "TMAX": ("tmax", "t_max", "ta_max", "tair_max", "max_temp", "temp_max", "tasmax", "tmx",
             "max_temperature", "temperature_max"),
    "P": ("p", "precip", "precipitation", "prcp", "rain", "rainfall", "ppt", "pr", "prec"),
    "WS": ("ws", "wind", "wind_speed", "windspeed", "wspd"),
    "VPD": ("vpd", "vapour_pressure_deficit", "vapor_pressure_deficit"),
    "SW_IN": ("sw_in", "swin", "sw", "rg", "rsds", "swdown", "sw_down", "shortwave",
              "solar_radiation", "global_radiation", "radiation", "srad"),
    "LAI": ("lai", "leaf_area_index"),
    "EVI": ("evi", "enhanced_vegetation_index"),
    "P_MONTHLY": ("p_monthly", "precip_monthly", "monthly_precipitation"),
    "WS_MONTHLY": ("ws_monthly", "wind_monthly", "monthly_wind_speed"),
    "LAT": ("lat", "latitude"),
    "LON": ("lon", "long", "lng", "longitude"),
    "IGBP": ("igbp", "land_cover", "landcover", "vegetation_type", "veg_type", "pft"),
    "ARIDITY_INDEX": ("aridity_index", "aridity", "ai"),
    "ELEV": ("elev", "elevation", "altitude", "alt", "elev_m"),
}
_MIN_RATIO = 0.8


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def _exact(column: str) -> str | None:
    """The canonical name :func:`fluxcore.sources.load_tidy` gives ``column`` by itself."""
    from .sources import ALIASES, DATE_COLUMN_NAMES, SITE_COLUMN_NAMES

    up = str(column).strip().upper()
    if up in SITE_COLUMN_NAMES:
        return "SITE_ID"
    if up in DATE_COLUMN_NAMES:
        return "DATE"
    return ALIASES.get(up)


def _score(column: str, canon: str) -> float:
    """How well ``column`` fits ``canon`` by synonyms (0: not at all)."""
    n = _norm(column)
    if not n:
        return 0.0
    syn = SYNONYMS.get(canon, ()) + (canon.lower(),)
    if n in syn:
        return 0.95
    words = n.split("_")
    if words[0] in syn:
        return 0.9
    if any(w in syn for w in words[1:] if len(w) >= 3):
        return 0.85
    ratio = max(difflib.SequenceMatcher(None, n, s).ratio() for s in syn if len(s) >= 3) \
        if any(len(s) >= 3 for s in syn) else 0.0
    return 0.8 * ratio if ratio >= _MIN_RATIO else 0.0


def suggest_column_map(columns: Iterable[str], fields: Sequence[str] = FIELDS) -> dict[str, str]:
    """Suggest which of the user's columns holds each canonical name.

    Parameters
    ----------
    columns : iterable of str
        The columns of the uploaded table.
    fields : sequence of str, default :data:`FIELDS`
        Canonical names to suggest columns for.

    Returns
    -------
    dict
        ``{canonical_name: their_column}`` for the names a column was found for; each
        column appears at most once.
    """
    cols = [str(c) for c in columns]
    out: dict[str, str] = {}
    used: set[str] = set()
    for c in cols:  # what the loader recognises by itself
        canon = _exact(c)
        if canon in fields and canon not in out:
            out[canon] = c
            used.add(c)
    order = {f: i for i, f in enumerate(fields)}
    best = []  # each column only for the name it fits best (never a second choice)
    for c in cols:
        if c in used:
            continue
        score, f = max(((_score(c, f), -order[f]), f) for f in fields)
        if score[0] > 0:
            best.append((score, f, c))
    for _s, f, c in sorted(best, reverse=True):
        if f not in out:
            out[f] = c
            used.add(c)
    return {f: out[f] for f in fields if f in out}


@dataclass(frozen=True)
class ColumnPlan:
    """What the loader would make of an upload's columns.

    Attributes
    ----------
    suggested : dict
        ``{canonical_name: their_column}`` from :func:`suggest_column_map`.
    automatic : bool
        The loader finds a site, a date and a target column by itself and every suggestion
        is one it would make: the upload can be loaded without asking.
    missing : list of str
        Required names without a suggestion (``"SITE_ID"``, ``"DATE"``, ``"a target"``).
    unused : list of str
        Columns nothing is suggested for.
    problem : str or None
        Why no mapping can make the table loadable (fewer than three columns: a site, a date
        and a flux are needed), None otherwise.
    """

    suggested: dict[str, str]
    automatic: bool
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    problem: str | None = None


def plan_columns(columns: Iterable[str]) -> ColumnPlan:
    """Suggestions for an upload and whether it needs the user's mapping (see :class:`ColumnPlan`)."""
    cols = [str(c) for c in columns]
    sugg = suggest_column_map(cols)
    missing = [f for f in ("SITE_ID", "DATE") if f not in sugg]
    if not any(t in sugg for t in TARGETS):
        missing.append("a target")
    auto = not missing and all(_exact(c) == f for f, c in sugg.items())
    unused = [c for c in cols if c not in sugg.values()]
    problem = None
    if len(cols) < 3:
        problem = (f"the table has {len(cols)} column(s) ({', '.join(cols) or 'none'}); a tidy file "
                   "needs at least a site column, a date column and a flux column (GPP, ER or NEE)")
    return ColumnPlan(suggested=sugg, automatic=auto and problem is None, missing=missing,
                      unused=unused, problem=problem)


def mapping_from_choices(choices: Mapping[str, str | None]) -> dict[str, str]:
    """Turn the user's choices into a column map for the loader.

    Parameters
    ----------
    choices : mapping
        ``{canonical_name: their_column or None}`` (None or ``""``: not in the file).

    Returns
    -------
    dict
        ``{their_column: canonical_name}``.

    Raises
    ------
    ConfigError
        A canonical name that fluxcore does not know, a column chosen twice, or no site,
        date or target column (in plain words, naming the names).
    """
    out: dict[str, str] = {}
    for canon, col in choices.items():
        if canon not in FIELDS:
            raise ConfigError(f"{canon!r} is not one of fluxcore's column names "
                              f"({', '.join(FIELDS)})")
        if col is None or str(col) == "":
            continue
        if col in out:
            raise ConfigError(f"column {col!r} is chosen for both {out[col]} and {canon}; "
                              "choose each column once")
        out[str(col)] = canon
    given = set(out.values())
    need = ["the site column (SITE_ID)" if "SITE_ID" not in given else "",
            "the date column (DATE)" if "DATE" not in given else "",
            f"at least one target ({', '.join(TARGETS)})" if not given & set(TARGETS) else ""]
    need = [n for n in need if n]
    if need:
        raise ConfigError("choose " + " and ".join(need))
    return out


def read_columns(path: str | Path, shown: str | None = None) -> list[str]:
    """The column names of a CSV / Parquet file (the header only is read).

    Raises
    ------
    DataError
        The file cannot be read (named as ``shown``, default the path).
    """
    path = Path(path)
    shown = shown or str(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return [str(c) for c in pq.read_schema(path).names]
        cols = pd.read_csv(path, nrows=0).columns
        if len(cols) == 1 and ";" in str(cols[0]):
            cols = pd.read_csv(path, nrows=0, sep=";").columns
        return [str(c).strip() for c in cols]
    except pd.errors.EmptyDataError:
        raise DataError(shown, "the file is empty") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(shown, f"cannot be read: {msg}") from None


def _read_all(path: Path, shown: str) -> pd.DataFrame:
    from .sources import _read_table

    try:
        raw = _read_table(path)
        if raw.shape[1] == 1 and ";" in str(raw.columns[0]):
            raw = _read_table(path, sep=";")
    except DataError as exc:
        raise DataError(shown, exc.problem) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    return raw


def prepare_upload(
    data: str | Path,
    *,
    column_map: Mapping[str, str] | None = None,
    sites: str | Path | None = None,
    data_name: str | None = None,
    sites_name: str | None = None,
) -> tuple[Path, list[str]]:
    """Write one tidy file with the column map applied and a site catalogue merged in.

    The result is loaded by :func:`fluxcore.sources.load_dataset` without further arguments,
    with the same outcome as ``load_dataset(data, column_map=column_map, sites_table=sites)``:
    mapped columns win over same-named ones (which are renamed ``<name> (not used)``), and
    the catalogue fills the per-site columns (``LAT, LON, IGBP, ARIDITY_INDEX, ELEV``...)
    that the file lacks or leaves empty.

    Parameters
    ----------
    data : str or Path
        The uploaded tidy file.
    column_map : mapping, optional
        ``{their_column: canonical_name}`` (from :func:`mapping_from_choices`).
    sites : str or Path, optional
        A site catalogue (read by :func:`fluxcore.sources.read_sites_table`).
    data_name, sites_name : str, optional
        Names used in messages (the names the user gave the files).

    Returns
    -------
    path : Path
        ``<folder of data>/prepared-<hash>/<stem of data>.parquet``; the hash covers the
        map and the catalogue, so another choice gives another file.
    notes : list of str
        Plain-language remarks (sites of the data missing from the catalogue and the reverse).

    Raises
    ------
    DataError
        Unreadable file or catalogue, a mapped column not in the file, or no site column
        to join the catalogue on (named by ``data_name`` / ``sites_name``).
    """
    from .sources import SITE_COLUMN_NAMES, read_sites_table

    data = Path(data)
    data_name = data_name or data.name
    column_map = dict(column_map or {})
    raw = _read_all(data, data_name)
    absent = [c for c in column_map if c not in raw.columns]
    if absent:
        raise DataError(data_name, f"has no column {absent[0]!r}")
    claimed = set(column_map.values())
    rename = dict(column_map)
    for c in raw.columns:
        if c not in rename and _exact(c) in claimed:
            rename[c] = f"{c} (not used)"
    df = raw.rename(columns=rename)
    notes: list[str] = []
    digest = hashlib.sha256(json.dumps(sorted(column_map.items())).encode())
    if sites is not None:
        sites = Path(sites)
        sites_name = sites_name or sites.name
        try:
            table = read_sites_table(sites)
        except DataError as exc:
            raise DataError(sites_name, exc.problem) from None
        digest.update(sites.read_bytes())
        site_col = "SITE_ID" if "SITE_ID" in df.columns else next(
            (c for c in df.columns if str(c).strip().upper() in SITE_COLUMN_NAMES), None)
        if site_col is None:
            raise DataError(data_name, "has no site column to join the site catalogue on; "
                                       "choose the column that holds the site id (SITE_ID)")
        ids = df[site_col].astype("string").str.strip()
        table = table.set_index("SITE_ID")
        for c in table.columns:
            values = ids.map(table[c]).astype(object)
            own = next((k for k in df.columns if k == c or _exact(k) == c), None)
            if own is not None:  # the file's values win, the catalogue fills the gaps
                df[own] = df[own].astype(object).where(df[own].notna(), values)
            else:
                df[c] = values
        have = set(ids.dropna().unique())
        no_row = sorted(have - set(table.index))
        if no_row:
            notes.append(f"{len(no_row)} site(s) of {data_name} have no row in {sites_name} "
                         f"(e.g. {', '.join(no_row[:5])}): they have no position or zone "
                         "unless the data file gives them")
        extra = sorted(set(table.index) - have)
        if extra:
            notes.append(f"{len(extra)} site(s) of {sites_name} are not in {data_name} "
                         f"(e.g. {', '.join(extra[:5])}); ignored")
    out_dir = data.parent / f"prepared-{digest.hexdigest()[:12]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{data.stem}.parquet"
    for c in df.columns:  # mixed text/number columns as text (Parquet needs one type)
        if df[c].dtype == object:
            df[c] = df[c].astype("string")
    tmp = out.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(out)
    return out, notes


def field_label(name: str) -> str:
    """``"TA: daily mean air temperature [degC]"``, for a selection box."""
    if name == "SITE_ID":
        return "SITE_ID: site id"
    if name == "DATE":
        return "DATE: day (YYYY-MM-DD or YYYYMMDD)"
    v = VARIABLES.get(name)
    if v is not None:
        return f"{name}: {v.long_name} [{v.unit}]"
    return {"LAT": "LAT: latitude [deg]", "LON": "LON: longitude [deg]",
            "IGBP": "IGBP: land cover class", "ARIDITY_INDEX": "ARIDITY_INDEX: P/PET [-]"}.get(name, name)


__all__ = [
    "FIELDS", "FIELD_GROUPS", "SYNONYMS", "ColumnPlan", "suggest_column_map", "plan_columns",
    "mapping_from_choices", "read_columns", "prepare_upload", "field_label",
]
