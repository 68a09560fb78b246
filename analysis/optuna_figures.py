"""Optuna's own figures for an Optuna stage, rebuilt from the run directory (issue 13).

The searcher's study lives inside Ray (or its SQLite file on the cluster); the report reads only
the run directory, so it rebuilds an in-memory Optuna study from the recorded trials: each
trial's searched parameters (its config values), its best value of the study metric, and its
state (completed, pruned by ASHA, failed). The distributions are inferred from the recorded
values: ints -> IntDistribution, floats -> FloatDistribution (log scale when the values span a
factor of 10 or more and are positive), anything else -> CategoricalDistribution of the values
(lists and dicts as their JSON text, since Optuna's choices must be scalars).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from analysis.figures import save
from analysis.rundir import StageResults, StudyResults, Trial, finite
from analysis.summary import RUN_KEYS
from analysis.tables import varying_keys

# Ray stops that Optuna would call pruning; errors and infeasible points are failures.
PRUNED = ("asha_stopped", "stopped")
FAILED = ("error", "infeasible")


def is_optuna_stage(stage: StageResults) -> bool:
    return stage.search == "optuna"


def searched_keys(stage: StageResults) -> list[str]:
    """The config keys the stage searched: its compare keys, plus any other varying key."""
    feasible = [t for t in stage.trials if t.status not in FAILED]
    keys = list(stage.compare)
    keys += [k for k in varying_keys(feasible) if k not in keys]
    return [k for k in keys if k not in RUN_KEYS]


def _choice(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def infer_distribution(values: list[Any]) -> BaseDistribution | None:
    """The distribution the recorded values were drawn from; None when only one value occurs."""
    present = [v for v in values if v is not None]
    if len({json.dumps(v, sort_keys=True, default=str) for v in values}) < 2:
        return None
    numeric = present and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )
    if numeric and len(present) == len(values):
        lo, hi = min(present), max(present)
        if all(isinstance(v, int) for v in present):
            return IntDistribution(int(lo), int(hi))
        log = lo > 0 and hi / lo >= 10
        return FloatDistribution(float(lo), float(hi), log=log)
    choices = list(dict.fromkeys(_choice(v) for v in values))
    return CategoricalDistribution(choices)


def _param_value(dist: BaseDistribution, value: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return _choice(value)
    if isinstance(dist, IntDistribution):
        return int(value)
    return float(value)


def rebuild_study(stage: StageResults, study: StudyResults) -> optuna.StudyResults:
    """An in-memory Optuna study holding the stage's recorded trials, in recorded order.

    Raises:
        ValueError: the stage has no searched parameter that takes two values, so there is
            nothing Optuna's figures could show; names the stage.
    """
    trials = [t for t in stage.trials if t.status != "infeasible"]
    dists = {}
    for key in searched_keys(stage):
        dist = infer_distribution([t.config.get(key) for t in trials])
        if dist is not None:
            dists[key] = dist
    if not dists:
        raise ValueError(
            f"stage {stage.name!r} has no searched parameter with two or more recorded values "
            f"(keys {searched_keys(stage)}); Optuna's figures need at least one"
        )
    direction = "maximize" if study.mode == "max" else "minimize"
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "new study created" on stderr
    try:
        ostudy = optuna.create_study(direction=direction, study_name=f"{study.name}/{stage.name}")
    finally:
        optuna.logging.set_verbosity(level)
    for t in trials:
        ostudy.add_trial(_frozen_trial(t, dists, study))
    return ostudy


def _frozen_trial(
    t: Trial, dists: dict[str, BaseDistribution], study: StudyResults
) -> optuna.trial.FrozenTrial:
    present = {k: d for k, d in dists.items() if k in t.config and t.config[k] is not None}
    params = {k: _param_value(d, t.config[k]) for k, d in present.items()}
    value = finite(t.best.get(study.metric))
    curve = {int(r["epoch"]): v for r in t.curve if (v := finite(r.get(study.metric))) is not None}
    if t.status in FAILED or (value is None and t.status not in PRUNED):
        state, value = TrialState.FAIL, None
    elif t.status in PRUNED:
        state, value = TrialState.PRUNED, None
    else:
        state = TrialState.COMPLETE
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params=params,
        distributions=present,
        intermediate_values=curve,
        user_attrs={"label": t.name, "status": t.status},
    )


def completed(ostudy: optuna.StudyResults) -> int:
    return sum(t.state == TrialState.COMPLETE for t in ostudy.trials)


def optimization_history(
    ostudy: optuna.StudyResults, path: Path, title: str, metric: str = "value", *, budget: str
) -> bool:
    """optuna.visualization.matplotlib.plot_optimization_history; False without a completed
    trial."""
    if completed(ostudy) < 1:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_optimization_history(ostudy)
    _retitle(ax, f"{title}: optimization history")
    ax.set_ylabel(f"best {metric} of the trial")
    return save(ax.figure, path, budget=budget)


def param_importances(ostudy: optuna.StudyResults, path: Path, title: str, *, budget: str) -> bool:
    """optuna.visualization.matplotlib.plot_param_importances; needs two completed trials.

    Importances are fANOVA (Optuna's default evaluator) over the completed trials only.
    """
    if completed(ostudy) < 2:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_param_importances(ostudy)
    _retitle(ax, f"{title}: parameter importances (fANOVA)")
    return save(ax.figure, path, budget=budget)


def _retitle(ax: Any, title: str) -> None:
    """Replace Optuna's title, wherever it put it (left for importances, centre for history)."""
    for loc in ("left", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(title)
