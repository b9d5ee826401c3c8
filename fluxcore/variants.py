"""Named learner variants: a registered learner plus options (the fuzzy presets of Gao et al. 2025).

Pure data at the bottom layer, so that the run configuration can check variant names and
their options without importing the fuzzy machinery; :func:`fluxcore.fuzzy.make_variant`
builds a variant from its entry here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS", "MIN_SITES", "ZONE_OVERLAP", "preset_options", "register_variant", "variant_base"]

#: Default half-width of the zone transitions on the log10(AI) axis [-] (+-12 % in AI).
ZONE_OVERLAP = 0.05

#: Default minimum number of training sites an alpha-cut keeps.
MIN_SITES = 5


#: Named fuzzy variants. ``mode="sites"``: fuzzy site weighting; ``mode="zones"``: fuzzy
#: aridity zones. Options can be overridden through the variant's hyperparameters.
PRESETS: dict[str, dict[str, Any]] = {}
for _b in ("lstm", "rf", "svm", "mlr"):
    PRESETS[f"{_b}_fuzzy"] = {
        "base": _b, "mode": "sites", "kind": "gaussian", "width": None, "alpha_cut": 0.0,
        "min_sites": MIN_SITES, "group_weights": None, "rescale": True,
        "description": f"{_b.upper()} + fuzzy site weighting (Gaussian membership of the "
                       "comprehensive distance, width = median training distance, no alpha-cut)",
    }
    PRESETS[f"{_b}_fuzzycut"] = {
        **PRESETS[f"{_b}_fuzzy"], "alpha_cut": 0.5,
        "description": f"{_b.upper()} + fuzzy site weighting with alpha-cut 0.5 "
                       f"(at least {MIN_SITES} sites kept)",
    }
    PRESETS[f"{_b}_fuzzyzones"] = {
        "base": _b, "mode": "zones", "min_membership": 0.05, "zone_min_sites": 3,
        "overlap": ZONE_OVERLAP,
        "description": f"{_b.upper()} per fuzzy aridity zone, combined by the test site's "
                       "zone memberships",
    }
del _b

_SITE_OPTIONS = ("kind", "width", "alpha_cut", "min_sites", "group_weights", "rescale")
_ZONE_OPTIONS = ("min_membership", "zone_min_sites", "overlap")


def preset_options(name: str) -> tuple[str, ...]:
    """Option keys of preset ``name`` that ``params`` may override (not base-learner keys)."""
    return _SITE_OPTIONS if PRESETS[name]["mode"] == "sites" else _ZONE_OPTIONS




def register_variant(name: str, spec: dict[str, Any]) -> None:
    """Add a named variant (``spec`` has ``base``, ``mode`` and the options of that mode)."""
    if spec.get("mode") not in ("sites", "zones") or "base" not in spec:
        raise ValueError("a variant spec needs 'base' and mode 'sites' or 'zones'")
    PRESETS[name] = dict(spec)


def variant_base(name: str) -> str | None:
    """The base learner of variant ``name`` (None when ``name`` is no variant)."""
    spec = PRESETS.get(name)
    return None if spec is None else str(spec["base"])
