"""Study files: what a study is, how a file is loaded, and how it is validated.

A study file is plain Python that the user wrote (it is executed like a config, so only run study
files you trust). It defines one `study = Study(...)`. Validation happens here, before Ray starts,
so a typo costs seconds, not a cluster allocation.
"""

from __future__ import annotations

import math
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.contract import SELECTABLE_METRICS as METRICS
from trainables.contract import TASKS

SCHEDULERS = ("asha", "fifo")
SEARCHERS = ("grid", "random", "optuna")
ASHA_SETTINGS = ("grace_period", "reduction_factor")


class StudyError(ValueError):
    """A study file that cannot run; the message names the bad value and the valid ones."""


FROM_STUDY_TAKES = ("model", "checkpoint")


@dataclass(frozen=True)
class FromStudy:
    """A reference to another study's result: its best trial of `stage` (default: last stage).

    Used as a config value. `take="model"` (default) gives the key the best trial's model config
    and `<key>_checkpoint` its best checkpoint: `encoder=FromStudy("classifier128")` gives the
    U-Net the classifier's architecture and weights. `take="checkpoint"` gives the key the
    checkpoint's path.
    """

    study: str
    stage: str | None = None
    take: str = "model"

    def __post_init__(self) -> None:
        if self.take not in FROM_STUDY_TAKES:
            raise StudyError(
                f"FromStudy({self.study!r}, take={self.take!r}): choose take from "
                f"{FROM_STUDY_TAKES}"
            )


@dataclass
class Stage:
    """One step of a study.

    Args:
        name: folder name of the stage's Ray experiment (letters, digits, -, _).
        space: Ray Tune search space over config keys (tune.grid_search, tune.choice, ...).
        title: human title for reports ("Channels").
        label: the course's name for the stage's configurations, numbered as in
            EXPERIMENTS.md: a prefix such as "A.2" becomes "A.2-A", "A.2-B", ... in grid order.
        config: values set for this stage on top of what it inherits.
        inherit: "previous" (best config of the stage before; the course's "use the best
            configuration from the previous step"), "base", or the name of an earlier stage.
        scheduler: "fifo" (every trial runs to the end: the course's comparisons, where every
            variant gets the same budget) or "asha" (early stopping: wide searches). Default:
            "fifo" for a grid, "asha" for random and Optuna searches.
        search: "grid" (grid_search / choice), "random" or "optuna" (seeded TPE).
        num_samples: samples per grid point (random) or trials in total (optuna).
        evaluate: after the stage, evaluate its best checkpoint on the test split.
    """

    name: str
    # Keys are config keys, or a tuple of keys sampled together: {('channels', 'blocks'): ...}.
    space: dict[Any, Any] = field(default_factory=dict)
    title: str | None = None
    label: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    inherit: str = "previous"
    scheduler: str | None = None  # None: see the docstring's default
    search: str = "grid"
    num_samples: int = 1
    evaluate: bool = False

    def __post_init__(self) -> None:
        if self.scheduler is None:
            self.scheduler = "fifo" if self.search == "grid" else "asha"


@dataclass
class Study:
    """A named sequence of stages over one trainable, with a metric and constraints.

    Args:
        name: default experiment folder name (runs/<name>).
        trainable: "classification" or "segmentation".
        base: the base config every stage starts from (data, trainer and model keys).
        stages: the stages, run in order.
        metric, mode: what "best" means; defaults to val_acc / val_iou, max.
        constraints: rules checked before training (see trainables.models.VALID_RULES).
        asha: ASHA settings: grace_period (epochs), reduction_factor.
        description: one paragraph for the report.
    """

    name: str
    trainable: str
    base: dict[str, Any]
    stages: list[Stage]
    metric: str | None = None
    mode: str = "max"
    constraints: dict[str, Any] = field(default_factory=dict)
    asha: dict[str, Any] = field(default_factory=lambda: {"grace_period": 2, "reduction_factor": 2})
    description: str = ""


def load_study(path: str | Path) -> Study:
    """Execute a study file and return its validated `study` object."""
    if not str(path).strip():
        raise StudyError(
            f"study file {str(path)!r} is empty; give a study file, e.g. "
            f"search_spaces/activations.py{_examples_hint()}"
        )
    path = Path(path)
    if path.is_dir():
        raise StudyError(
            f"study file {str(path)!r} is a directory; give a study file inside it, e.g. "
            f"{path / 'activations.py'}"
        )
    if not path.is_file():
        raise StudyError(f"study file {str(path)!r} does not exist{_examples_hint()}")
    namespace = _execute(path)
    study = namespace.get("study")
    if not isinstance(study, Study):
        raise StudyError(
            f"{path} must define `study = Study(...)` (from orchestrator.study import Study, "
            f"Stage); found {type(study).__name__}"
        )
    validate_study(study)
    return study


def _examples_hint() -> str:
    examples = sorted(Path("search_spaces").glob("*.py")) if Path("search_spaces").is_dir() else []
    names = [str(p) for p in examples if p.name != "__init__.py"]
    return "; study files here: " + ", ".join(names) if names else ""


def _execute(path: Path) -> dict[str, Any]:
    """Run the user's file; any failure becomes a StudyError naming the file and its line."""
    try:
        return runpy.run_path(str(path), run_name="archsweep_study")
    except StudyError:
        raise
    except SystemExit as err:  # sys.exit()/exit() in a study file would end the driver silently
        raise StudyError(
            f"{_where(path, err)}: the study file called sys.exit({err.code!r}); a study file "
            "only defines `study = Study(...)`, remove the exit"
        ) from None
    except Exception as err:  # the user's code: name the file and the line, not our stack
        raise StudyError(f"{_where(path, err)}: {type(err).__name__}: {err}") from err


def _where(path: Path, err: BaseException) -> str:
    """'file, line N' of the innermost frame of `err` inside the study file."""
    tb = err.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path}, line {line}" if line else str(path)


def validate_study(study: Study) -> None:
    """Structural checks of every field; config keys are checked per stage by the planner.

    Raises:
        StudyError: naming the bad value and what would be valid.
    """
    _check_study_fields(study)
    _check_asha(study.asha)
    _check_constraints(study.constraints)
    seen: list[str] = []
    for i, stage in enumerate(study.stages):
        _check_stage(stage, i, seen)
        seen.append(stage.name)


def _check_study_fields(study: Study) -> None:
    if not isinstance(study.name, str) or not study.name:
        raise StudyError(
            f"Study name={study.name!r} must be a non-empty string, e.g. 'activations'"
        )
    if study.trainable not in TASKS:
        raise StudyError(f"trainable={study.trainable!r} is not valid; choose one of {TASKS}")
    if not isinstance(study.base, dict):
        raise StudyError(
            f"base={study.base!r} must be a dict of config keys, e.g. "
            "base={'dataset': 'tiny_imagenet', 'model': 'resnet', 'epochs': 10}"
        )
    if study.metric is not None and study.metric not in METRICS[study.trainable]:
        raise StudyError(
            f"metric={study.metric!r} is not reported by {study.trainable} trials; choose one "
            f"of {METRICS[study.trainable]}"
        )
    if study.mode not in ("max", "min"):
        raise StudyError(f"mode={study.mode!r} is not valid; choose 'max' or 'min'")
    if not isinstance(study.stages, list | tuple):
        raise StudyError(
            f"stages={type(study.stages).__name__}(...) must be a list of Stage, e.g. "
            "stages=[Stage('baseline')]"
        )
    if not study.stages:
        raise StudyError(f"study {study.name!r} has no stages")
    for i, stage in enumerate(study.stages):
        if not isinstance(stage, Stage):
            raise StudyError(
                f"stages[{i}] is {type(stage).__name__} {stage!r}; every item of stages must be "
                "a Stage(...)"
            )
    if not isinstance(study.description, str):
        raise StudyError(f"description={study.description!r} must be a string")


def _check_asha(asha: Any) -> None:
    if not isinstance(asha, dict):
        raise StudyError(
            f"asha={asha!r} must be a dict, e.g. asha={{'grace_period': 2, 'reduction_factor': 2}}"
        )
    unknown = set(asha) - set(ASHA_SETTINGS)
    if unknown:
        raise StudyError(
            f"unknown asha setting(s) {sorted(map(str, unknown))}; valid: "
            + ", ".join(ASHA_SETTINGS)
        )
    grace = asha.get("grace_period", 1)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 1:
        raise StudyError(f"asha grace_period={grace!r} must be an integer >= 1 (epochs)")
    factor = asha.get("reduction_factor", 2)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor >= 2:
        raise StudyError(
            f"asha reduction_factor={factor!r} must be a number >= 2 (2 keeps the best half at "
            "each rung, 3 the best third)"
        )


def _check_constraints(constraints: Any) -> None:
    # Imported here: trainables.models pulls in torch, which a bad study file need not wait for.
    from trainables.models import VALID_RULES

    if not isinstance(constraints, dict):
        raise StudyError(
            f"constraints={constraints!r} must be a dict of rules, e.g. "
            "constraints={'max_params': 5_000_000}"
        )
    unknown = sorted(str(k) for k in set(constraints) - set(VALID_RULES))
    if unknown:
        raise StudyError(
            f"unknown constraint rule(s) {unknown}; valid rules: {', '.join(VALID_RULES)}"
        )


def _check_stage(stage: Stage, index: int, seen: list[str]) -> None:
    if not isinstance(stage.name, str):
        raise StudyError(
            f"stages[{index}]: stage name {stage.name!r} must be a string of letters, digits, "
            "'-' or '_', e.g. Stage('channels')"
        )
    if not stage.name.replace("-", "").replace("_", "").isalnum():
        raise StudyError(f"stage name {stage.name!r} must be letters, digits, '-' or '_'")
    if stage.name in seen:
        raise StudyError(f"stage name {stage.name!r} is used twice; give each stage its own name")
    if stage.name == "evaluation":
        raise StudyError("stage name 'evaluation' is reserved (the evaluation folder); rename it")
    where = f"stage {stage.name!r}"
    _check_stage_types(stage, where)
    if stage.scheduler not in SCHEDULERS:
        raise StudyError(
            f"{where}: scheduler={stage.scheduler!r} is not valid; choose one of {SCHEDULERS}"
        )
    if stage.search not in SEARCHERS:
        raise StudyError(
            f"{where}: search={stage.search!r} is not valid; choose one of {SEARCHERS}"
        )
    valid_inherit = ["previous", "base", *seen]
    if stage.inherit not in valid_inherit:
        raise StudyError(
            f"{where}: inherit={stage.inherit!r} is not valid (a stage inherits from 'previous', "
            f"'base' or a stage before it); choose one of {valid_inherit}"
        )
    num = stage.num_samples
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise StudyError(f"{where}: num_samples={num!r} must be an integer >= 1")
    for key, dimension in stage.space.items():
        _check_dimension(dimension, f"{where}: space[{key!r}]")
    grid_keys = [
        str(k) for k, v in stage.space.items() if isinstance(v, dict) and "grid_search" in v
    ]
    if stage.search == "optuna" and grid_keys:
        raise StudyError(
            f"{where}: search='optuna' cannot take tune.grid_search (keys {grid_keys}); use "
            "tune.choice for categorical dimensions"
        )
    if stage.search == "optuna" and not _has_sampled(stage.space):
        raise StudyError(
            f"{where}: search='optuna' needs at least one sampled dimension in space (e.g. "
            "space={'lr': tune.loguniform(1e-4, 1e-2)}); got space="
            f"{stage.space!r}. Use search='grid' for a fixed configuration"
        )


def _check_stage_types(stage: Stage, where: str) -> None:
    for attr, example in (
        ("space", "space={'activation': tune.grid_search(['relu', 'gelu'])}"),
        ("config", "config={'epochs': 5}"),
    ):
        value = getattr(stage, attr)
        if not isinstance(value, dict):
            raise StudyError(
                f"{where}: {attr}={value!r} must be a dict of config keys, e.g. {example}"
            )
    for attr in ("title", "label"):
        value = getattr(stage, attr)
        if value is not None and not isinstance(value, str):
            raise StudyError(f"{where}: {attr}={value!r} must be a string or None")
    if not isinstance(stage.evaluate, bool):
        raise StudyError(f"{where}: evaluate={stage.evaluate!r} must be True or False")


def _check_dimension(dimension: Any, where: str) -> None:
    """A sampled dimension with no value to try (tune.choice([]), tune.randint(3, 3)) is named
    as such, before the planner reports a symptom of it ("lr=None must be a number")."""
    from ray.tune.search.sample import Categorical, Float, Integer, Quantized

    # tune.grid_search([]) is the planner's to name (orchestrator/plan.py).
    if isinstance(dimension, Categorical) and not dimension.categories:
        raise StudyError(
            f"{where} = tune.choice([]) has no choices; give a non-empty list, e.g. "
            "tune.choice(['relu', 'gelu'])"
        )
    elif isinstance(dimension, Integer):
        lo, hi = dimension.lower, dimension.upper
        inclusive = isinstance(dimension.sampler, Quantized)  # qrandint includes upper
        if lo > hi or (lo == hi and not inclusive):
            raise StudyError(
                f"{where} = an integer range [{lo}, {hi}) that holds no integer "
                f"(tune.randint's upper bound is excluded); give upper > lower, e.g. "
                f"tune.randint({lo}, {lo + 1}) for the single value {lo}"
            )
    elif isinstance(dimension, Float):
        lo, hi = dimension.lower, dimension.upper
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise StudyError(
                f"{where} = a float range from {lo} to {hi} that is empty or not finite; "
                "give finite bounds with lower <= upper, e.g. tune.uniform(0.0, 0.5)"
            )


def _has_sampled(space: dict[Any, Any]) -> bool:
    # Imported here: Ray is slow to import, and most study-file mistakes need no Ray.
    from ray.tune.search.sample import Domain

    return any(isinstance(v, Domain) for v in space.values())
