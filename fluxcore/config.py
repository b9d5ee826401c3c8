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
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .features import FeatureConfig
from .folds import POOLS, test_sites
from .learners import available_learners, make_learner
from .learners.base import check_params
from .pretrain import PretrainConfig
from .qc import QCConfig
from .schema import integer, mapping, names, number, option, path, raise_problems, text
from .schema import problems as schema_problems
from .strategies import strategy_for
from .variables import TARGETS, ZONES
from .variants import PRESETS, preset_options

STRATEGIES = ("fast", "per-fold")
DEFAULT_LEARNERS = ["lstm", "rf", "svm", "mlr"]
DEFAULT_TARGETS = ["GPP", "ER"]
#: seeds are given to numpy / scikit-learn / torch, which take 32-bit unsigned seeds
MAX_SEED = 2**32 - 1


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


def _split_commas(value: Any) -> Any:
    """``"mlr, rf"`` -> ``["mlr", "rf"]`` (a convenience of config files); other values as given."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


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
    names_ = list(available_learners())
    return names_ + [n for n in PRESETS if n not in names_]


def _unknown(label: str, given: list, known) -> str | None:
    bad = [v for v in given if v not in known]
    return f"unknown {label} {bad}; choose from {list(known)}" if bad else None


@dataclass
class RunConfig:
    """Configuration of one leave-one-site-out run.

    Every option has a declared type and range (:mod:`fluxcore.schema`): :meth:`check` lists
    every value that does not fit, one line per problem naming the key path, e.g.
    ``features.rolling_windows: must be a list of integers >= 1, got 'x'``.

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
    pool_sample : int or None
        Number of training sites (None, default: no sample). A fixed sample of this many
        sites, balanced over the aridity zones and drawn with ``seed``
        (:func:`fluxcore.folds.stratified_pool_sample`), is the only set of training sites; a
        fold's pool is that sample minus its test site (intersected with the ``pool`` rule).
        Every site trains when the dataset has no more sites than this. The quick preset
        (:mod:`fluxcore.presets`) uses it; not together with ``pool_fraction``.
    features : dict
        Options of ``fluxcore.features.FeatureConfig`` (checked with their types).
    params : dict
        Hyperparameters per learner name: ``{"lstm": {"max_epochs": 5}}``.
    seed : int
        Seed (0 to 2**32 - 1) given as ``random_state`` to every learner that has one (unless
        set in params).
    qc : dict or None
        Options of ``fluxcore.qc.QCConfig`` (None: the loader's default QC).
    min_train_sites : int
        A fold whose training pool has fewer sites is skipped (and reported); a run in which
        every fold is skipped stops with a :class:`ConfigError`.
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
    sites_table : str or None
        Site table (CSV with ``SITE_ID`` and e.g. ``LAT, LON, IGBP, ARIDITY_INDEX``) given to
        :func:`fluxcore.sources.load_dataset` (``sites_table=``), e.g. for a folder of
        official daily files without a ``sites.csv``. Left out of :meth:`to_dict` when None,
        so that configs without it keep their run key.
    """

    data: str = option("demo", path("'demo' or the path of a data folder or file (text)"))
    learners: list[str] = option(factory=lambda: list(DEFAULT_LEARNERS), spec=names("a list of learner names"))
    targets: list[str] = option(factory=lambda: list(DEFAULT_TARGETS), spec=names("a list of target names"))
    sites: list[str] | None = option(None, names("a list of site ids", optional=True))
    zones: list[str] | None = option(None, names("a list of aridity zones", optional=True))
    pool: str = option("all", text("'all' or 'zone'"))
    pool_fraction: float = option(1.0, number(gt=0, le=1))
    pool_sample: int | None = option(None, integer(ge=2, optional=True))
    features: dict = option(factory=dict, spec=mapping("a mapping of feature options"))
    params: dict = option(factory=dict, spec=mapping("a mapping {learner: {hyperparameter: value}}", nested=True))
    seed: int = option(0, integer(ge=0, le=MAX_SEED))
    qc: dict | None = option(None, mapping("a mapping of QC options", optional=True))
    min_train_sites: int = option(2, integer(ge=1))
    strategy: str = option("fast", text("'fast' or 'per-fold'"))
    strategy_options: dict = option(factory=dict, spec=mapping("a mapping {learner: {option: value}}", nested=True))
    pretrain: dict | None = option(None, mapping("a mapping of pre-training options", optional=True))
    sites_table: str | None = option(None, path("the path of a site table (text)", optional=True))

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, d: dict, source: str | None = None) -> RunConfig:
        """Build from a plain dict and :meth:`check` it.

        Parameters
        ----------
        d : dict
            Config keys (see the class); ``learners``, ``targets``, ``sites`` and ``zones``
            may also be comma-separated text.
        source : str, optional
            Where ``d`` came from (a file name, ``"command line"``); starts each line of an error.

        Raises
        ------
        ConfigError
            One line per problem (unknown keys, values of the wrong type or range, unknown
            names), each naming the key.
        """
        if not isinstance(d, dict):
            raise_problems([f"a run configuration must be a mapping, got {type(d).__name__}"], source)
        known = {f.name for f in fields(cls)}
        lines = []
        unknown = sorted((k for k in d if k not in known), key=str)
        if unknown:
            lines.append(f"unknown config key(s) {unknown}; known: {sorted(known)}")
        d = copy.deepcopy({k: v for k, v in d.items() if k in known})
        for key in ("learners", "targets", "sites", "zones"):
            if key in d:
                d[key] = _split_commas(d[key])
        for key in ("features", "params", "strategy_options"):
            if key in d and d[key] is None:
                d[key] = {}
        if isinstance(d.get("params"), dict):
            d["params"] = {k: ({n: _number_from_text(v) for n, v in p.items()} if isinstance(p, dict) else p)
                           for k, p in d["params"].items()}
        cfg = cls(**d)
        raise_problems(lines + cfg.problems(), source)
        return cfg

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Read a ``.yaml``/``.yml``, ``.toml`` or ``.json`` file (errors start with its name)."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder, not a config file (.yaml, .toml or .json)")
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        suffix = path.suffix.lower()
        try:
            text_ = path.read_text(encoding="utf-8")
            if suffix in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(text_)
                d = {} if d is None else d
            elif suffix == ".toml":
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # Python 3.10: the tomli backport (a dependency there)
                    import tomli as tomllib
                d = tomllib.loads(text_)
            elif suffix == ".json":
                d = json.loads(text_)
            else:
                raise ConfigError(f"{path}: unknown config format {suffix!r} (use .yaml, .toml or .json)")
        except ConfigError:
            raise
        except Exception as exc:  # parse errors of the three formats, undecodable bytes
            problem = " ".join(str(exc).split())
            raise ConfigError(f"{path}: cannot parse config: {problem}") from exc
        return cls.from_dict(d, source=str(path))

    # ------------------------------------------------------------ writing
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (tuples become lists; ``sites_table`` only when set,
        ``pool_fraction`` only when not 1, ``pool_sample`` only when set: the defaults keep
        the keys of runs made before)."""
        d = _jsonable(asdict(self))
        for key in ("sites_table", "pool_sample"):
            if d.get(key) is None:
                d.pop(key, None)
        if d.get("pool_fraction") == 1.0:
            del d["pool_fraction"]
        return d

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text (sorted keys); also written to ``path`` when given."""
        text_ = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if path is not None:
            Path(path).write_text(text_, encoding="utf-8")
        return text_

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text; also written to ``path`` when given."""
        import yaml

        text_ = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text_, encoding="utf-8")
        return text_

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
    def problems(self) -> list[str]:
        """Every problem :meth:`check` finds, one line each (empty: the config is fine).

        Types and ranges of every key (:mod:`fluxcore.schema`), then names: targets, zones,
        pool, strategy, duplicated learners, ``params`` / ``strategy_options`` for learners
        not in the run, the options of ``features``, ``qc`` and ``pretrain``. A key whose
        type is wrong gets its type line only.
        """
        lines = schema_problems(RunConfig, self)
        bad = {ln.split(":", 1)[0] for ln in lines}

        def ok(*keys: str) -> bool:
            return not bad.intersection(keys)

        if ok("learners"):
            if not self.learners:
                lines.append("learners: no learner given; choose from " + ", ".join(available_learner_names()))
            elif len(set(self.learners)) != len(self.learners):
                lines.append(f"learners: learner listed twice in {list(self.learners)}")
        if ok("targets"):
            if not self.targets:
                lines.append(f"targets: no target given; choose from {list(TARGETS)}")
            elif msg := _unknown("target(s)", self.targets, TARGETS):
                lines.append(f"targets: {msg}")
        if ok("zones") and self.zones is not None and (msg := _unknown("aridity zone(s)", self.zones, ZONES)):
            lines.append(f"zones: {msg}")
        if ok("pool") and self.pool not in POOLS:
            lines.append(f"pool: unknown pool {self.pool!r}; choose 'all' or 'zone'")
        if ok("pool_sample", "pool_fraction") and self.pool_sample is not None and self.pool_fraction != 1.0:
            lines.append(f"pool_sample: give either pool_sample (a number of training sites, here "
                         f"{self.pool_sample}) or pool_fraction (a fraction of them, here {self.pool_fraction}), "
                         "not both")
        if ok("strategy") and self.strategy not in STRATEGIES:
            lines.append(f"strategy: unknown strategy {self.strategy!r}; choose from {list(STRATEGIES)}")
        if ok("data", "sites_table") and self.sites_table is not None and str(self.data).strip().lower() == "demo":
            lines.append("sites_table: the demo world has its own sites; a site table is for a data folder or file")
        for key in ("params", "strategy_options"):
            extra = sorted(set(getattr(self, key)) - set(self.learners)) if ok(key, "learners") else []
            if extra:
                lines.append(f"{key}: given for learner(s) {extra} that are not in learners {list(self.learners)}")
        if ok("features"):
            lines += _option_problems(FeatureConfig.from_dict, self.features)
        if ok("qc") and self.qc is not None:
            lines += _option_problems(QCConfig.from_dict, self.qc)
        if ok("pretrain") and self.pretrain is not None:
            lines += _option_problems(PretrainConfig.from_dict, self.pretrain)
        return lines

    def check(self) -> RunConfig:
        """Checks that need no dataset (types, ranges, names); returns self.

        Raises
        ------
        ConfigError
            Listing every problem of :meth:`problems`, one per line.
        """
        raise_problems(self.problems())
        return self

    def validate(self, dataset=None) -> RunConfig:
        """Full validation: :meth:`check`, the learner registry and hyperparameters, and with
        a dataset, targets and sites present and a test site left.

        Raises
        ------
        ConfigError
            One line per problem, naming the key (unknown learner / target / zone / site).
        """
        self.check()
        lines = []
        known = available_learner_names()
        if msg := _unknown("learner(s)", self.learners, known):
            lines.append(f"learners: {msg.replace('choose from', 'available:')}")
        for name in self.learners:
            if name in known:
                lines += _option_problems(check_learner_params, name, self.params.get(name, {}))
        if dataset is not None:
            missing = [t for t in self.targets if t not in dataset.targets]
            if missing:
                lines.append(f"targets: target(s) {missing} not in dataset {dataset.name!r} "
                             f"(it has {dataset.targets})")
            if self.sites is not None:
                have = set(dataset.site_ids)
                unknown = [s for s in self.sites if s not in have]
                if unknown:
                    more = f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
                    lines.append(f"sites: unknown site id(s) {unknown[:10]}{more} in dataset {dataset.name!r}")
            if not lines and not test_sites(self, dataset):
                lines.append(f"sites/zones: no test site left in dataset {dataset.name!r} for "
                             f"sites={self.sites} zones={self.zones}")
        raise_problems(lines)
        return self

    def resolved(self, dataset=None) -> RunConfig:
        """A validated copy with every default filled in.

        * ``params[name]`` holds every hyperparameter of the learner (its defaults plus the
          given values), with ``random_state = seed`` where the learner has one;
        * ``features`` / ``qc`` hold every option of ``FeatureConfig`` / ``QCConfig``;
        * ``sites`` / ``zones`` are sorted (order does not change a run).
        """
        self.validate(dataset)
        cfg = copy.deepcopy(self)
        params = {}
        for name in cfg.learners:
            params[name] = resolve_learner_params(name, cfg.params.get(name, {}), cfg.seed)
        cfg.params = params
        cfg.features = _jsonable(FeatureConfig.from_dict(cfg.features).to_dict())
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
            cfg.qc = _jsonable(QCConfig.from_dict(cfg.qc).to_dict())
        if cfg.sites is not None:
            cfg.sites = sorted(cfg.sites)
        if cfg.zones is not None:
            cfg.zones = [z for z in ZONES if z in cfg.zones]
        return RunConfig.from_dict(cfg.to_dict())


def _option_problems(build, *args) -> list[str]:
    """Lines of the :class:`ConfigError` that ``build(*args)`` raises (none if it succeeds)."""
    try:
        build(*args)
    except ConfigError as exc:
        return str(exc).splitlines()
    return []


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
        unknown = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        try:
            known = sorted(make_learner(base).get_params())
        except Exception:  # a plug-in learner without get_params: keep Python's words
            unknown = None
        if unknown is None:
            raise ConfigError(f"bad hyperparameter for learner {name!r}: {exc}") from exc
        raise ConfigError(f"bad hyperparameter for learner {name!r}: params.{name}.{unknown[1]} is not a "
                          f"hyperparameter of {base!r} (known: {', '.join(known)})") from None
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
