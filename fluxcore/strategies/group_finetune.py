"""Generic fast strategy ``group_finetune``: pre-train per group of test sites, fine-tune per fold.

Works for any learner that can continue training (tags ``fine_tune = True`` and
``fast_strategy = "group_finetune"``; the LSTM's default). See :func:`group_finetune`.
With a pre-training stage (``RunConfig.pretrain``, :mod:`fluxcore.pretrain`) each group model
is first trained on the source targets (e.g. the process model run on the group's training
drivers), then fine-tuned on the towers. Group and pre-trained models are kept in the run's
model store, so a resumed run re-uses them.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..fewshot import context_frame, context_rows
from ..params import Interval
from .base import (
    LocalMapper,
    Pools,
    Strategy,
    register_strategy,
    rows_for,
    site_rows,
    split_groups,
    universes,
)

__all__ = ["group_finetune", "GroupFinetune", "group_model_name"]


def group_model_name(round_: int, group: list[str]) -> str:
    """Stable file name of the model of one group and round (same partition -> same name)."""
    digest = hashlib.sha1("\n".join(sorted(group)).encode()).hexdigest()[:12]
    return f"r{round_}-g{digest}"


def group_finetune(
    template,
    X,
    Y,
    sites: np.ndarray,
    dates: np.ndarray,
    pools: Pools,
    *,
    n_groups: int = 4,
    finetune_epochs: int = 1,
    finetune_windows: int = 4000,
    finetune_lr: float | None = None,
    n_rounds: int = 1,
    random_state: int = 0,
    n_jobs: int = 1,
    progress=None,
    info: dict | None = None,
    models: Any = None,
    learner_name: str = "",
    pretrain: Any = None,
    mapper: Any = None,
) -> dict[str, np.ndarray]:
    """Any fine-tunable learner for all folds: pre-train per group of test sites, fine-tune per fold.

    For each group ``g`` of test sites (per universe), one model (a clone of ``template``, with
    its own early stopping on validation sites drawn from its training sites) is trained on
    the universe's sites outside ``g``. For each test site ``f`` in ``g``, a copy of that model
    is fine-tuned (:meth:`FluxLearner.fine_tune`) for ``finetune_epochs`` epochs of at most
    ``finetune_windows`` windows drawn from ``pools[f]`` (which adds the other sites of ``g``
    that the group model has not seen) at the learner's fine-tuning learning rate, then
    predicts ``f``. No model ever sees its test site: ``f`` is outside the group model's
    training set and outside its own fine-tuning set. A few-shot learner (tag ``few_shot``)
    also gets, in ``predict(context=)`` only, the fluxes of ``f``'s rows it names
    (:func:`fluxcore.fewshot.context_rows`); those rows come back as NaN (not scored). Cost: ``n_groups`` full fits plus one
    short fine-tune per fold, instead of one full fit per fold. A learner whose inputs do not
    depend on the other sites of a call (``shares_fine_tune_data``, e.g. the LSTM) prepares
    its group's rows once (``fine_tune_data``) and fine-tunes each fold on its pool's rows of
    them (``fine_tune_on``, the same network as ``fine_tune`` on the pool): the per-fold cost
    then follows the windows drawn, not the rows of the pool.

    With ``n_rounds > 1`` this is repeated with a new partition of the test sites and the
    learner's ``random_state`` increased by the round number, and a site's prediction is the
    mean of its ``n_rounds`` predictions: a seed ensemble (each member as above, none seeing the
    site), ``n_rounds`` times the cost. Round 0 is the ``n_rounds = 1`` computation itself.

    Parameters
    ----------
    template : FluxLearner
        Unfitted learner with ``fine_tune`` (cloned per group).
    X, Y : pandas.DataFrame
        Features and targets (row-aligned with ``sites`` and ``dates``).
    sites, dates : ndarray
        Site id and day of each row.
    pools : mapping
        Test site -> training sites.
    n_groups : int
        Group models per universe.
    finetune_epochs, finetune_windows, finetune_lr
        Fine-tuning budget per fold (``finetune_epochs = 0`` predicts with the group model).
    n_rounds : int
        Ensemble members per site (partitions of the test sites, learner seeds).
    random_state : int
        Seed of the grouping; the learner's own ``random_state`` is its hyperparameter.
    n_jobs : int
        Group models trained at the same time, each in its own spawned process (1: all in this
        process). The result does not depend on ``n_jobs``. Spawned processes re-import the
        calling script: guard a script's entry point with ``if __name__ == "__main__":``.
    progress : callable, optional
        ``progress(done, message)`` after each fold of each round (``done`` counts up to
        ``n_folds * n_rounds``).
    info : dict, optional
        Filled with ``{test site: {"val_sites": [...], "group_size": n}}``: the early-stopping
        validation sites of the fold's group models (training sites of those models; with
        several rounds the union over rounds) and the size of its round-0 group.
    models : RunStore, optional
        Model store (``load_model`` / ``save_model``): group models (and pre-trained models)
        are saved after training and loaded instead of trained when present.
    learner_name : str
        The learner's name in the run (folder of its stored models).
    pretrain : PretrainStage, optional
        Pre-training stage (:class:`fluxcore.pretrain.PretrainStage`).
    mapper : TaskMapper, optional
        Where the group jobs run (default: :class:`fluxcore.strategies.base.LocalMapper` with
        ``n_jobs`` spawned processes; a :class:`fluxcore.parallel.DaskSession` on a cluster,
        whose workers then need the model store's folder). Results are collected in job order:
        the predictions do not depend on where the jobs ran.

    Returns
    -------
    dict
        Test site -> predictions (rows of the site, number of targets).
    """
    n_rounds = int(n_rounds)
    if n_rounds < 1:
        raise ConfigError(f"group_finetune option n_rounds must be at least 1, got {n_rounds}")
    sites, pools, rows_of = site_rows(sites, pools)
    dates = np.asarray(dates)
    rng = np.random.default_rng(random_state)
    seed0 = template.get_params().get("random_state")
    jobs = []  # (round, learner seed, training sites of the group model, test sites of the group)
    for k in range(n_rounds):
        seed = seed0 if (not k or seed0 is None) else int(seed0) + k
        for universe, tests in sorted(universes(pools).items(), key=lambda kv: sorted(kv[1])):
            for group in split_groups(sorted(tests), n_groups, rng):
                jobs.append((k, seed, sorted(universe - set(group)), sorted(group)))
    payload = (template, X, Y, sites, dates, rows_of, pools, int(finetune_epochs),
               int(finetune_windows), finetune_lr, models, learner_name, pretrain)
    sums: dict[str, np.ndarray] = {}
    done = 0

    def collect(job, result) -> None:
        nonlocal done
        k, _, _, group = job
        preds, val = result
        for f in group:
            sums[f] = preds[f] if k == 0 else sums[f] + preds[f]
            if info is not None:
                if k == 0:
                    info[f] = {"val_sites": val, "group_size": len(group)}
                else:
                    info[f]["val_sites"] = sorted(set(info[f]["val_sites"]) | set(val))
            done += 1
            if progress is not None:
                progress(done, f"{f}" + (f" (round {k + 1}/{n_rounds})" if n_rounds > 1 else ""))

    # spawned processes (safe with torch) or cluster workers get the data once and train whole
    # group models (one torch thread each); results in job order: identical to n_jobs=1
    mapper = mapper or LocalMapper(n_processes=n_jobs)
    mapper.map(_group_job, jobs, payload=payload, kind="processes",
               on_result=lambda i, result: collect(jobs[i], result))
    return sums if n_rounds == 1 else {f: v / n_rounds for f, v in sums.items()}


def _stored(models, learner_name: str, name: str, template, seed):
    """A fitted model from the store, or None (absent, no store, or a learner without state)."""
    if models is None or not hasattr(template, "set_state"):
        return None
    state = models.load_model(learner_name, name)
    if state is None:
        return None
    model = template.clone()
    if seed is not None:
        model.set_params(random_state=seed)
    return model.set_state(state)


def _store(models, learner_name: str, name: str, model) -> None:
    if models is not None and hasattr(model, "get_state"):
        models.save_model(learner_name, name, model.get_state())


def _group_model(payload, k: int, seed, train: list[str], group: list[str]):
    """The trained model of one group (from the store when a run is resumed)."""
    (template, X, Y, sites, dates, rows_of, _, _, _, _, models, learner_name, pretrain) = payload
    name = group_model_name(k, group)
    base = _stored(models, learner_name, name, template, seed)
    if base is not None:
        return base
    fit_rows = rows_for(rows_of, train)
    model = template.clone()
    if seed is not None:
        model.set_params(random_state=seed)
    if pretrain is None:
        base = model.fit(X.iloc[fit_rows], Y.iloc[fit_rows], sites=sites[fit_rows], dates=dates[fit_rows])
    else:
        base = _stored(models, learner_name, "pretrain-" + name, template, seed)
        if base is None:
            pre_rows = rows_for(rows_of, train + group) if pretrain.config.transductive else fit_rows
            base = pretrain.pretrain(model, X, rows=pre_rows, sites=sites, dates=dates, fit_rows=fit_rows)
            _store(models, learner_name, "pretrain-" + name, base)
        base = pretrain.finetune(base, X.iloc[fit_rows], Y.iloc[fit_rows], sites=sites[fit_rows],
                                 dates=dates[fit_rows])
    _store(models, learner_name, name, base)
    return base


def _group_job(payload, job) -> tuple[dict[str, np.ndarray], list[str]]:
    """Train (or load) one group model and fine-tune / predict each of its test sites.

    Returns ``({test site: predictions}, early-stopping validation sites of the group model)``.
    """
    (_, X, Y, sites, dates, rows_of, pools, finetune_epochs, finetune_windows, finetune_lr,
     _, _, _) = payload
    k, seed, train, group = job
    base = _group_model(payload, k, seed, train, group)
    out = {}
    trained = set(train)
    tuned = [f for f in group if finetune_epochs > 0 and set(pools[f]) - trained]
    shared = None
    if tuned and getattr(base, "shares_fine_tune_data", lambda: False)():
        # the inputs of every site any of the group's fine-tunes uses, built once: each test
        # site then trains on its pool's rows of them (the same windows and values as a
        # fine_tune on the pool alone), instead of rebuilding nearly all rows once per site
        prep_rows = rows_for(rows_of, sorted(set().union(*(pools[f] for f in tuned))))
        shared = base.fine_tune_data(X.iloc[prep_rows], Y.iloc[prep_rows], sites=sites[prep_rows],
                                     dates=dates[prep_rows])
    for f in group:
        model = base
        if f in tuned:
            model = copy.deepcopy(base)
            if shared is not None:
                model.fine_tune_on(shared, pools[f], epochs=finetune_epochs, lr=finetune_lr,
                                   max_windows=int(finetune_windows))
            else:
                ft_rows = rows_for(rows_of, pools[f])
                model.fine_tune(X.iloc[ft_rows], Y.iloc[ft_rows], sites=sites[ft_rows],
                                dates=dates[ft_rows], epochs=finetune_epochs, lr=finetune_lr,
                                max_windows=int(finetune_windows))
        te = rows_of[f]
        shots = context_rows(model, sites[te], dates[te])  # few-shot: the site's first k months
        if shots is None:
            out[f] = np.asarray(model.predict(X.iloc[te], sites=sites[te], dates=dates[te]), dtype=float)
            continue
        ctx = context_frame(Y.iloc[te], sites[te], dates[te], shots)
        pred = np.asarray(model.predict(X.iloc[te], sites=sites[te], dates=dates[te], context=ctx),
                          dtype=float)
        pred[shots] = np.nan  # their fluxes were seen: not scored
        out[f] = pred
    val = getattr(base, "val_sites_", None)
    return out, sorted(map(str, [] if val is None else val))


class GroupFinetune(Strategy):
    """Group models fine-tuned per fold (see :func:`group_finetune`)."""

    name = "group_finetune"
    description = ("model trained per group of sites, fine-tuned briefly per fold on its own pool "
                   "(n_rounds > 1: mean of that many such members with new groups and seeds)")
    plain_description = "a few group models, each adjusted briefly for every site it predicts"
    default_options = {"n_groups": 4, "finetune_epochs": 1, "finetune_windows": 4000,
                       "finetune_lr": None, "n_rounds": 1}
    option_constraints = {
        "n_groups": [Interval(int, 1)], "finetune_epochs": [Interval(int, 0)],
        "finetune_windows": [Interval(int, 1)], "finetune_lr": [Interval(float, 0, closed="neither"), None],
        "n_rounds": [Interval(int, 1)],
    }
    pretrain = True

    def supports(self, learner, weighted: bool = False) -> bool:
        return not weighted and bool(learner.get_tag("fine_tune", False))

    def run(self, learner, X, Y, sites, dates, pools, options, context):
        n_rounds = int(options.get("n_rounds", 1))
        n_folds = max(1, len(pools)) * max(1, n_rounds)
        progress = context.progress
        return group_finetune(
            learner, X, Y, sites, dates, pools, n_groups=int(options["n_groups"]),
            finetune_epochs=int(options["finetune_epochs"]),
            finetune_windows=int(options["finetune_windows"]), finetune_lr=options.get("finetune_lr"),
            n_rounds=n_rounds, random_state=_grouping_seed(learner), n_jobs=max(1, int(context.n_processes)),
            info=context.info, models=context.models, learner_name=context.learner_name,
            pretrain=context.pretrain, mapper=context.mapper,
            progress=None if progress is None else (lambda done, msg: progress(done / n_folds)))


def _grouping_seed(learner) -> int:
    seed = learner.get_params().get("random_state")
    return 0 if seed is None else int(seed)


register_strategy(GroupFinetune())
