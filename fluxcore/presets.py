"""Run presets for a lesson's pace, and the expected duration of a run before it starts.

A preset changes a :class:`fluxcore.config.RunConfig` in a documented way. The ``quick``
preset trades accuracy for speed so that a class sees results within about a minute:

* each fold trains on the **other towers of the test site's aridity zone** (``pool="zone"``),
  a sample of the training towers instead of every other tower;
* **fewer trees** (random forest: 30 instead of 100), fewer kernel features and training rows
  (support vector machine), a **smaller network trained for 3 epochs** (LSTM);
* **fewer groups** in the fast strategies (one model per group of sites, see
  :mod:`fluxcore.strategies`).

Its numbers are *not* those of the paper's setting: quick runs are labelled as such (run
name, Results page; :func:`preset_of` recognises them from their configuration). No model
ever sees its test site's fluxes, as in every run.

Expected duration: :func:`fold_seconds_history` reads the seconds per fold measured by
finished runs of a run store (manifest ``fold_seconds``, per learner, preset and data set)
and the preparation time (manifest ``total_seconds`` minus ``compute_seconds``);
:func:`expected_duration` uses them, falling back to :data:`DEFAULT_FOLD_SECONDS`
(documented measurements on the demo world, 2 shared CPU cores).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from .config import RunConfig

__all__ = ["Preset", "QUICK", "PRESETS", "apply_preset", "preset_of", "fold_seconds_history",
           "expected_duration", "Expected", "DEFAULT_FOLD_SECONDS", "DEFAULT_PREPARE_SECONDS"]


@dataclass(frozen=True)
class Preset:
    """A named change of a run configuration.

    Parameters
    ----------
    name : str
        Short name (``"quick"``), used in run names.
    label : str
        What a user reads next to the choice.
    description : str
        What the preset changes, in plain words (shown with its results).
    params : dict
        Hyperparameters per learner that the preset sets.
    strategy_options : dict
        Fast-strategy options per learner that the preset sets.
    pool : str or None
        Training pool of each fold (None: left as chosen).
    """

    name: str
    label: str
    description: str
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    strategy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    pool: str | None = None


QUICK = Preset(
    name="quick",
    label="Quick (classroom pace: about a minute on the demo world)",
    description=("QUICK preset: each site is predicted by models trained on the other towers of its "
                 "aridity zone only, with 30 trees (random forest), 100 kernel features and at most "
                 "5,000 training days (support vector machine), a small LSTM trained for 3 epochs, and "
                 "fewer site groups. Faster, usually less accurate than the full settings; not the "
                 "paper's setting."),
    params={"rf": {"n_estimators": 30},
            "svm": {"n_components": 100, "max_fit_rows": 5000},
            "lstm": {"max_epochs": 3, "hidden_size": 32, "max_windows_per_epoch": 5000}},
    strategy_options={"rf": {"n_groups": 5}, "svm": {"n_groups": 5, "n_rounds": 1},
                      "lstm": {"n_groups": 2, "finetune_windows": 1000}},
    pool="zone",
)

#: Presets by name.
PRESETS: dict[str, Preset] = {QUICK.name: QUICK}

#: Seconds per fold by (preset, learner) when no finished run has measured them: the quick
#: preset on the demo world's arid zone (15 test sites, pool = zone) and the standard
#: settings (pool = all other sites), measured on 2 CPU cores shared with other work
#: (November 2026); a rough guide, replaced by measurements as runs finish.
DEFAULT_FOLD_SECONDS: dict[tuple[str, str], float] = {
    ("quick", "mlr"): 0.1, ("quick", "rf"): 0.7, ("quick", "svm"): 0.7, ("quick", "lstm"): 0.9,
    ("standard", "mlr"): 0.1, ("standard", "rf"): 6.0, ("standard", "svm"): 18.0, ("standard", "lstm"): 20.0,
}
#: Seconds to prepare the data and features of a run (before the first fold), by preset.
DEFAULT_PREPARE_SECONDS: dict[str, float] = {"quick": 15.0, "standard": 15.0}
#: Seconds per fold of a learner not listed above.
FALLBACK_FOLD_SECONDS = 5.0


def _merge(base: Mapping, extra: Mapping) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for k, v in extra.items():
        out[k] = {**out.get(k, {}), **dict(v)}
    return out


def apply_preset(config: RunConfig, preset: Preset | str) -> RunConfig:
    """A copy of ``config`` with the preset's settings (for the learners it runs).

    The preset's values win over those of ``config``; learners the preset does not know keep
    their settings.
    """
    p = PRESETS[preset] if isinstance(preset, str) else preset
    cfg = copy.deepcopy(config)
    lrns = set(cfg.learners)
    cfg.params = _merge(cfg.params, {k: v for k, v in p.params.items() if k in lrns})
    if cfg.strategy == "fast":
        cfg.strategy_options = _merge(cfg.strategy_options,
                                      {k: v for k, v in p.strategy_options.items() if k in lrns})
    if p.pool is not None:
        cfg.pool = p.pool
    return cfg


def _config_dict(config: Any) -> dict:
    if isinstance(config, RunConfig):
        return config.to_dict()
    return dict(config or {})


def preset_of(config: RunConfig | Mapping) -> Preset | None:
    """The preset a configuration was made with (None: standard settings).

    A configuration matches a preset when it has the preset's pool and, for each of its
    learners the preset sets, the preset's hyperparameters (resolved configurations, with
    every default filled in, match too).
    """
    d = _config_dict(config)
    lrns = list(d.get("learners") or [])
    params = d.get("params") or {}
    for p in PRESETS.values():
        if p.pool is not None and d.get("pool", "all") != p.pool:
            continue
        known = [lrn for lrn in lrns if lrn in p.params]
        if not known:
            continue
        if all((params.get(lrn) or {}).get(k) == v for lrn in known for k, v in p.params[lrn].items()):
            return p
    return None


def _preset_name(config: Mapping) -> str:
    p = preset_of(config)
    return p.name if p is not None else "standard"


def fold_seconds_history(runs_dir: str | Path) -> dict:
    """Seconds per fold measured by the finished runs of a run store.

    Parameters
    ----------
    runs_dir : path
        Run store folder (run folders with ``manifest.json`` and ``config.json``).

    Returns
    -------
    dict
        ``{"fold": {(data name, preset, learner): median seconds per fold},
        "prepare": {(data name, preset): median seconds before the first fold},
        "n_runs": number of runs read}``. Unreadable runs are left out.
    """
    per_fold: dict[tuple, list[float]] = {}
    prep: dict[tuple, list[float]] = {}
    n = 0
    d = Path(runs_dir)
    for m_path in sorted(d.glob("*/manifest.json")) if d.is_dir() else []:
        try:
            m = json.loads(m_path.read_text(encoding="utf-8"))
            cfg = json.loads((m_path.parent / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if m.get("status") != "done" or not m.get("fold_seconds"):
            continue
        data = str((m.get("data") or {}).get("name") or cfg.get("data"))
        preset = _preset_name(cfg)
        n += 1
        for fid, sec in (m.get("fold_seconds") or {}).items():
            lrn = str(fid).split("/")[0]
            try:
                per_fold.setdefault((data, preset, lrn), []).append(float(sec))
            except (TypeError, ValueError):
                continue
        total, compute = m.get("total_seconds"), m.get("compute_seconds")
        if isinstance(total, (int, float)) and isinstance(compute, (int, float)) and total >= compute:
            prep.setdefault((data, preset), []).append(float(total) - float(compute))
    return {"fold": {k: median(v) for k, v in per_fold.items() if v},
            "prepare": {k: median(v) for k, v in prep.items() if v}, "n_runs": n}


@dataclass(frozen=True)
class Expected:
    """Expected duration of a run.

    Attributes
    ----------
    seconds : float
        Whole run, preparation included [s].
    per_fold : dict
        Seconds per fold by learner [s].
    prepare : float
        Seconds before the first fold [s].
    measured : bool
        True when every learner's figure comes from finished runs of this data set and preset.
    """

    seconds: float
    per_fold: dict
    prepare: float
    measured: bool

    @property
    def source(self) -> str:
        """Where the figure comes from, in plain words."""
        return ("measured on earlier runs of these data" if self.measured
                else "a rough guide until runs of these data are measured")


def expected_duration(learners: Iterable[str], n_test_sites: int, *, preset: str | None = None,
                      data_name: str | None = None, history: Mapping | None = None) -> Expected:
    """Expected duration of a run of ``learners`` over ``n_test_sites`` test sites.

    Parameters
    ----------
    learners : iterable of str
        The run's learners.
    n_test_sites : int
        Test sites (one fold per site and learner).
    preset : str, optional
        Preset name (None: standard settings).
    data_name : str, optional
        The data set's name (measurements of other data are not used).
    history : mapping, optional
        :func:`fold_seconds_history` of the run store.

    Returns
    -------
    Expected
    """
    pname = preset or "standard"
    fold_hist = dict((history or {}).get("fold") or {})
    prep_hist = dict((history or {}).get("prepare") or {})
    per_fold: dict[str, float] = {}
    measured = True
    for lrn in learners:
        sec = fold_hist.get((data_name, pname, lrn))
        if sec is None:
            measured = False
            sec = DEFAULT_FOLD_SECONDS.get((pname, lrn.split("_")[0]), FALLBACK_FOLD_SECONDS)
        per_fold[lrn] = float(sec)
    prepare = prep_hist.get((data_name, pname))
    if prepare is None:
        prepare = DEFAULT_PREPARE_SECONDS.get(pname, DEFAULT_PREPARE_SECONDS["standard"])
    total = float(prepare) + max(0, int(n_test_sites)) * sum(per_fold.values())
    return Expected(seconds=total, per_fold=per_fold, prepare=float(prepare), measured=measured and bool(per_fold))
