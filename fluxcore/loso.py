"""Leave-one-site-out cross-validation: the public entry points in one place.

The work is split over small modules (see ``docs/ARCHITECTURE.md``); this module gathers
their public names so that ``from fluxcore.loso import run_loso, load_run`` keeps working:

* :mod:`fluxcore.folds`: test sites, training pools, the fold plan;
* :mod:`fluxcore.foldrun`: the feature table sent to workers, fitting and predicting a fold;
* :mod:`fluxcore.fastbatch`: all folds of a learner at once with its fast strategy
  (:mod:`fluxcore.strategies`);
* :mod:`fluxcore.runner`: :func:`run_loso` (plan, compute, resume, finalise);
* :mod:`fluxcore.runstore`: run folders (:func:`load_run`, :func:`list_runs`, :func:`delete_run`);
* :mod:`fluxcore.summary`: the run's ``summary.md``; :mod:`fluxcore.cli.loso`: the command line.

Reference: Gao et al. (2025), leave-one-site-out validation of LSTM, RF, SVM and MLR.
"""

from __future__ import annotations

from .config import RunConfig
from .fastbatch import RunCancelled, run_fast_batches
from .foldrun import (
    FoldData,
    FoldTask,
    build_fold_data,
    compute_fold,
    fit_fold,
    fold_frame,
    make_task,
    predict_fold,
    resolve_learners,
    test_rows,
)
from .folds import FoldPlan, fold_train_sites, plan_folds, test_sites
from .runner import load_config_dataset, prepare_run, run_loso
from .runstore import RunResult, delete_run, list_runs, load_run
from .summary import summary_markdown

__all__ = [
    "RunConfig", "RunResult", "RunCancelled", "run_loso", "prepare_run", "load_config_dataset",
    "fold_train_sites", "test_sites", "plan_folds", "FoldPlan", "load_run", "list_runs", "delete_run",
    "FoldData", "FoldTask", "build_fold_data", "compute_fold", "fit_fold", "predict_fold", "fold_frame",
    "test_rows", "make_task", "resolve_learners", "run_fast_batches", "summary_markdown",
]
