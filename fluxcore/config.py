"""Run configuration: what a leave-one-site-out run computes.

A :class:`RunConfig` is a plain dataclass that round-trips through YAML, TOML (read only;
written as YAML or JSON) and JSON. Everything that changes the numbers of a run is in it
(data source, learners and their hyperparameters, targets, test sites, training pool,
feature options, QC options, seed), so that a stored config file reproduces the run.

Example (YAML)::

    data: ../shared/data/fluxnet2015
    learners: [lstm, rf, svm, mlr]
    targets: [GPP, ER]
    zones: [arid, semi-arid]
    pool: all
    seed: 0
    params:
      lstm: {max_epochs: 5}
"""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError, check_known_keys
from .folds import POOLS, test_sites
from .learners import available_learners, make_learner
from .learners.base import check_params
from .pretrain import PretrainConfig
from .strategies import strategy_for
from .variables import TARGETS, ZONES
from .variants import PRESETS, preset_options

STRATEGIES = ("fast", "per-fold")
DEFAULT_LEARNERS = ["lstm", "rf", "svm", "mlr"]
DEFAULT_TARGETS = ["GPP", "ER"]


def _jsonable(obj: Any) -> Any:
    """Turn tuples / numpy scalars / paths into JSON-compatible values (recursively)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        return obj.item()  # numpy scalar
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def _list_of_str(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def learner_catalogue() -> list[dict]:
    """What front ends show of every learner and variant, from the learners' own metadata.

    Returns
    -------
    list of dict
        One per name of :func:`available_learner_names`: ``name``, ``kind`` (``"learner"`` or
        ``"variant"``), ``base`` (the variant's learner, else the name), ``description`` (the
        class's ``description`` or the variant's), ``main_params`` (``{parameter: help}`` of
        the base learner) and ``fast_strategy`` (name or None).
    """
    rows = []
    for name in available_learner_names():
        is_variant = name not in available_learners()
        base = PRESETS[name]["base"] if is_variant else name
        learner = make_learner(base)
        strategy = strategy_for(learner, weighted=is_variant and PRESETS[name].get("mode") == "sites")
        if is_variant and PRESETS[name].get("mode") == "zones":
            strategy = None
        rows.append({"name": name, "kind": "variant" if is_variant else "learner", "base": base,
                     "description": (PRESETS[name].get("description", "") if is_variant
                                     else learner.description or type(learner).__name__),
                     "main_params": dict(learner.main_params),
                     "fast_strategy": None if strategy is None else strategy.name})
    return rows


def available_learner_names() -> list[str]:
    """Registered learner names plus the named variants (:data:`fluxcore.variants.PRESETS`)."""
    names = list(available_learners())
    return names + [n for n in PRESETS if n not in names]


@dataclass
class RunConfig:
    """Configuration of one leave-one-site-out run.

    Parameters
    ----------
    data : str
        Data source for :func:`fluxcore.sources.load_dataset` (``"demo"``, a folder, a file).
    learners : list of str
        Registered learner names (``mlr, rf, svm, lstm``) or fuzzy variant presets
        (``fluxcore.fuzzy.PRESETS``, e.g. ``lstm_fuzzy``).
    targets : list of str
        Targets predicted (subset of ``GPP, ER, NEE``).
    sites : list of str or None
        Test sites (None: every site, after the ``zones`` filter).
    zones : list of str or None
        Test-site aridity zones (None: all zones).
    pool : {"all", "zone"}
        Training pool of a fold: every other site, or every other site of the test site's zone.
    pool_fraction : float
        Fraction of the dataset's sites that may train (default 1: all). Below 1, a fixed
        sample of ``round(pool_fraction * n_sites)`` sites drawn with ``seed``
        (:func:`fluxcore.folds.pool_sample`) is the only set of training sites: a fold's pool is
        that sample (minus its test site, intersected with the ``pool`` rule); test sites
        are not affected. For "towers are scarce" comparisons.
    features : dict
        Keyword arguments of ``fluxcore.features.FeatureConfig``.
    params : dict
        Hyperparameters per learner name: ``{"lstm": {"max_epochs": 5}}``.
    seed : int
        Seed given as ``random_state`` to every learner that has one (unless set in params).
    qc : dict or None
        Keyword arguments of ``fluxcore.qc.QCConfig`` (None: the loader's default QC).
    min_train_sites : int
        A fold whose training pool has fewer sites is skipped (and reported).
    strategy : {"fast", "per-fold"}
        ``"per-fold"`` fits one fresh model per fold (the notebook way). ``"fast"`` (default)
        computes all folds of ``mlr``, ``rf``, ``svm`` and ``lstm`` at once with the strategies
        named by each learner's ``fast_strategy`` tag (:mod:`fluxcore.strategies`; exact for
        mlr; no model ever sees its test site); learners without one, and fuzzy variants other
        than ``mlr_fuzzy*``, still run fold by fold.
    strategy_options : dict
        Options of each learner's fast strategy, by learner name, e.g.
        ``{"rf": {"n_groups": 10}}``; checked against the strategy's declared options
        (:mod:`fluxcore.strategies`), defaults filled in by :meth:`resolved`.
    pretrain : dict or None
        Pre-training stage (:class:`fluxcore.pretrain.PretrainConfig` options, e.g.
        ``{"source": "processmodel", "epochs": 5}``) for the learners with the ``fine_tune``
        tag; None (default): no pre-training.
    """

    data: str = "demo"
    learners: list[str] = field(default_factory=lambda: list(DEFAULT_LEARNERS))
    targets: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    sites: list[str] | None = None
    zones: list[str] | None = None
    pool: str = "all"
    pool_fraction: float = 1.0
    features: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    seed: int = 0
    qc: dict | None = None
    min_train_sites: int = 2
    strategy: str = "fast"
    strategy_options: dict = field(default_factory=dict)
    pretrain: dict | None = None

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> RunConfig:
        """Build from a plain dict; unknown keys raise :class:`ConfigError` naming ``source``."""
        if not isinstance(d, dict):
            raise ConfigError(f"{source}: a run configuration must be a mapping, got {type(d).__name__}")
        check_known_keys(d, {f.name for f in fields(cls)}, f"{source}: unknown config key(s)")
        d = copy.deepcopy(d)
        for key in ("learners", "targets", "sites", "zones"):
            if key in d:
                d[key] = _list_of_str(d[key], f"{source}: {key}")
        for key in ("features", "params", "strategy_options"):
            if key in d and d[key] is None:
                d[key] = {}
        if isinstance(d.get("params"), dict):
            d["params"] = {k: ({n: _number_from_text(v) for n, v in p.items()} if isinstance(p, dict) else p)
                           for k, p in d["params"].items()}
        cfg = cls(**d)
        cfg.check()
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Read a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        suffix = path.suffix.lower()
        try:
            text = path.read_text(encoding="utf-8")
            if suffix in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(text) or {}
            elif suffix == ".toml":
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # Python 3.10: the tomli backport (a dependency there)
                    import tomli as tomllib
                d = tomllib.loads(text)
            elif suffix == ".json":
                d = json.loads(text)
            else:
                raise ConfigError(f"{path}: unknown config format {suffix!r} (use .yaml, .toml or .json)")
        except ConfigError:
            raise
        except Exception as exc:  # parse errors of the three formats
            raise ConfigError(f"{path}: cannot parse config: {exc}") from exc
        return cls.from_dict(d, source=str(path))

    # ------------------------------------------------------------ writing
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples become lists)."""
        d = _jsonable(asdict(self))
        if d.get("pool_fraction") == 1.0:  # the default keeps the keys of runs made before the option
            del d["pool_fraction"]
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text (sorted keys); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text; also written to ``path`` when given."""
        import yaml

        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def save(self, path: str | Path) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON (``.json``) depending on the suffix."""
        path = Path(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            self.to_yaml(path)
        elif path.suffix.lower() == ".json":
            self.to_json(path)
        else:
            raise ConfigError(f"{path}: write configs as .yaml or .json (TOML is read-only)")
        return path

    # ---------------------------------------------------------- validation
    def check(self) -> RunConfig:
        """Checks that need no dataset (types, pool, zones, target names). Returns self."""
        if not self.learners:
            raise ConfigError("no learner given; choose from " + ", ".join(DEFAULT_LEARNERS))
        if len(set(self.learners)) != len(self.learners):
            raise ConfigError(f"learner listed twice in {self.learners}")
        if not self.targets:
            raise ConfigError(f"no target given; choose from {list(TARGETS)}")
        bad = [t for t in self.targets if t not in TARGETS]
        if bad:
            raise ConfigError(f"unknown target(s) {bad}; choose from {list(TARGETS)}")
        if self.pool not in POOLS:
            raise ConfigError(f"unknown pool {self.pool!r}; choose 'all' or 'zone'")
        pf = self.pool_fraction
        if isinstance(pf, bool) or not isinstance(pf, (int, float)) or not 0 < pf <= 1:
            raise ConfigError(f"pool_fraction must be a number in (0, 1], got {pf!r}")
        if self.zones is not None:
            bad = [z for z in self.zones if z not in ZONES]
            if bad:
                raise ConfigError(f"unknown aridity zone(s) {bad}; choose from {list(ZONES)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.min_train_sites, int) or self.min_train_sites < 1:
            raise ConfigError(f"min_train_sites must be a positive integer, got {self.min_train_sites!r}")
        if not isinstance(self.params, dict) or not all(isinstance(v, dict) for v in self.params.values()):
            raise ConfigError("params must map learner names to {hyperparameter: value} mappings")
        extra = sorted(set(self.params) - set(self.learners))
        if extra:
            raise ConfigError(f"params given for learner(s) {extra} that are not in learners {self.learners}")
        if not isinstance(self.features, dict):
            raise ConfigError("features must be a mapping of FeatureConfig options")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose from {list(STRATEGIES)}")
        if not isinstance(self.strategy_options, dict) or not all(
                isinstance(v, dict) for v in self.strategy_options.values()):
            raise ConfigError("strategy_options must map learner names to {option: value} mappings")
        if self.qc is not None and not isinstance(self.qc, dict):
            raise ConfigError("qc must be a mapping of QCConfig options")
        return self

    def validate(self, dataset=None) -> RunConfig:
        """Full validation: learner names, and with a dataset, sites/zones/targets present.

        Raises
        ------
        ConfigError
            One message naming the unknown learner / target / zone / site.
        """
        self.check()
        names = available_learner_names()
        bad = [n for n in self.learners if n not in names]
        if bad:
            raise ConfigError(f"unknown learner(s) {bad}; available: {', '.join(names)}")
        for name in self.learners:
            check_learner_params(name, self.params.get(name, {}))
        if dataset is not None:
            missing = [t for t in self.targets if t not in dataset.targets]
            if missing:
                raise ConfigError(f"target(s) {missing} not in dataset {dataset.name!r} "
                                  f"(it has {dataset.targets})")
            if self.sites is not None:
                have = set(dataset.site_ids)
                unknown = [s for s in self.sites if s not in have]
                if unknown:
                    more = f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
                    raise ConfigError(f"unknown site id(s) {unknown[:10]}{more} in dataset {dataset.name!r}")
            if not test_sites(self, dataset):
                raise ConfigError(f"no test site left in dataset {dataset.name!r} for sites={self.sites} "
                                  f"zones={self.zones}")
        return self

    def resolved(self, dataset=None) -> RunConfig:
        """A validated copy with every default filled in.

        * ``params[name]`` holds every hyperparameter of the learner (its defaults plus the
          given values), with ``random_state = seed`` where the learner has one;
        * ``features`` / ``qc`` hold every option of ``FeatureConfig`` / ``QCConfig`` when
          those modules exist;
        * ``sites`` / ``zones`` are sorted (order does not change a run).
        """
        self.validate(dataset)
        cfg = copy.deepcopy(self)
        params = {}
        for name in cfg.learners:
            params[name] = resolve_learner_params(name, cfg.params.get(name, {}), cfg.seed)
        cfg.params = params
        cfg.features = _resolve_dataclass_options("fluxcore.features", "FeatureConfig", cfg.features, "features")
        cfg.strategy_options = resolve_strategy_options(cfg) if cfg.strategy == "fast" else {}
        if cfg.pretrain is not None:
            cfg.pretrain = PretrainConfig.from_dict(cfg.pretrain).to_dict()
            tunable = [n for n in cfg.learners if n in available_learners()
                       and make_learner(n).get_tag("fine_tune", False)]
            named = cfg.pretrain.get("learners")
            if named is not None:
                bad = [n for n in named if n not in tunable]
                if bad:
                    raise ConfigError(f"pretrain.learners: {bad} are not fine-tunable learners of this run "
                                      f"(fine-tunable: {tunable})")
                tunable = [n for n in tunable if n in named]
            if not tunable:
                raise ConfigError(f"pretrain: none of the learners {cfg.learners} can be fine-tuned "
                                  "(tag fine_tune), so nothing would be pre-trained")
        if cfg.qc is not None:
            cfg.qc = _resolve_dataclass_options("fluxcore.qc", "QCConfig", cfg.qc, "qc")
        if cfg.sites is not None:
            cfg.sites = sorted(cfg.sites)
        if cfg.zones is not None:
            cfg.zones = [z for z in ZONES if z in cfg.zones]
        return RunConfig.from_dict(cfg.to_dict())


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def _number_from_text(v: Any) -> Any:
    """``"1e-3"`` -> ``0.001``: YAML 1.1 reads exponent numbers without a dot as text."""
    return float(v) if isinstance(v, str) and _NUMBER.fullmatch(v.strip()) else v


def check_learner_params(name: str, given: dict):
    """Raise :class:`ConfigError` if ``given`` holds an unknown or out-of-range hyperparameter.

    ``name`` is a registered learner or a named variant (whose preset options are left to
    :func:`fluxcore.fuzzy.make_variant`; the other keys go to its base learner).

    Returns
    -------
    FluxLearner or None
        The checked learner made from ``given`` (a variant's base learner), or None for a
        name that is neither registered nor a variant.
    """
    base, params = name, dict(given)
    if name not in available_learners():
        if name not in PRESETS:
            return None
        base = PRESETS[name]["base"]
        params = {k: v for k, v in params.items() if k not in preset_options(name)}
    try:
        learner = make_learner(base, **params)
    except TypeError as exc:
        raise ConfigError(f"bad hyperparameter for learner {name!r}: {exc}") from exc
    check_params(learner, label=f"bad hyperparameter for learner {name!r}")
    return learner


def resolve_strategy_options(cfg: RunConfig) -> dict:
    """Options of each learner's fast strategy: declared defaults + ``cfg.strategy_options``.

    Keys are the run's learner names that have a fast strategy; an entry for a learner that is
    not in the run, or that has no fast strategy, is a :class:`ConfigError`, and so is any
    option the strategy does not declare or a value outside its constraints.
    """
    given = dict(cfg.strategy_options or {})
    extra = sorted(set(given) - set(cfg.learners))
    if extra:
        raise ConfigError(f"strategy_options given for {extra}, which are not in learners {cfg.learners}")
    out = {}
    for name in cfg.learners:
        learner = check_learner_params(name, cfg.params.get(name, {}))
        weighted = name not in available_learners() and PRESETS.get(name, {}).get("mode") == "sites"
        strategy = None if learner is None or (name in PRESETS and not weighted) else strategy_for(learner, weighted)
        if strategy is None:
            if given.get(name):
                raise ConfigError(f"strategy_options[{name!r}]: learner {name!r} has no fast strategy "
                                  "(it runs fold by fold)")
            continue
        out[name] = strategy.check_options(given.get(name), label=f"strategy_options[{name!r}]")
    return out


def resolve_learner_params(name: str, given: dict, seed: int) -> dict:
    """Full hyperparameters of learner ``name``: defaults + ``given`` (+ ``random_state``).

    Fuzzy variants (names not in the learner registry) keep the given values only, plus
    ``random_state``-free handling (the runner passes the seed to ``make_variant``).
    """
    learner = check_learner_params(name, given)
    if name not in available_learners():
        return _jsonable(dict(given))
    if "random_state" in learner.get_params() and "random_state" not in given:
        learner.set_params(random_state=seed)
    return _jsonable(learner.get_params())


def _resolve_dataclass_options(module: str, cls_name: str, options: dict, key: str) -> dict:
    import importlib

    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):
        return _jsonable(dict(options))
    try:
        obj = cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bad {key} option: {exc}") from exc
    try:
        return _jsonable(asdict(obj))
    except TypeError:
        return _jsonable(dict(vars(obj)))
