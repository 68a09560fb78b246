"""Study files: what a study is, how a file is loaded, and how it is validated.

A study file is plain Python that the user wrote (it is executed like a config, so only run study
files you trust). It defines one `study = Study(...)`. Validation happens here, before Ray starts,
so a typo costs seconds, not a cluster allocation.
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainables.contract import SELECTABLE_METRICS as METRICS
from trainables.contract import TASKS

SCHEDULERS = ("asha", "fifo")
SEARCHERS = ("grid", "random", "optuna")


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
        label: the course's name for the stage's configurations: "Baseline" for a single trial,
            or a prefix such as "3.1" that becomes "3.1-A", "3.1-B", ... in grid order.
        config: values set for this stage on top of what it inherits.
        inherit: "previous" (best config of the stage before; the course's "use the best
            configuration from the previous step"), "base", or the name of an earlier stage.
        scheduler: "asha" (early stopping) or "fifo" (every trial runs to the end).
        search: "grid" (grid_search / choice), "random" or "optuna" (seeded TPE).
        num_samples: samples per grid point (random) or trials in total (optuna).
        evaluate: after the stage, evaluate its best checkpoint on the test split.
    """

    name: str
    space: dict[str, Any] = field(default_factory=dict)
    title: str | None = None
    label: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    inherit: str = "previous"
    scheduler: str = "asha"
    search: str = "grid"
    num_samples: int = 1
    evaluate: bool = False


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
    path = Path(path)
    if not path.is_file():
        hint = ""
        examples = (
            sorted(Path("search_spaces").glob("*.py")) if Path("search_spaces").is_dir() else []
        )
        if examples:
            hint = "; study files here: " + ", ".join(
                str(p) for p in examples if p.name != "__init__.py"
            )
        raise StudyError(f"study file {str(path)!r} does not exist{hint}")
    try:
        namespace = runpy.run_path(str(path), run_name="archsweep_study")
    except StudyError:
        raise
    except Exception as err:  # the user's code: name the file and the line, not our stack
        tb = err.__traceback__
        line = None
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        where = f"{path}, line {line}" if line else str(path)
        raise StudyError(f"{where}: {type(err).__name__}: {err}") from err
    study = namespace.get("study")
    if not isinstance(study, Study):
        raise StudyError(
            f"{path} must define `study = Study(...)` (from orchestrator.study import Study, "
            f"Stage); found {type(study).__name__}"
        )
    validate_study(study)
    return study


def validate_study(study: Study) -> None:
    """Structural checks; config keys are checked per stage by the planner."""
    if study.trainable not in TASKS:
        raise StudyError(f"trainable={study.trainable!r} is not valid; choose one of {TASKS}")
    if study.metric is not None and study.metric not in METRICS[study.trainable]:
        raise StudyError(
            f"metric={study.metric!r} is not reported by {study.trainable} trials; choose one "
            f"of {METRICS[study.trainable]}"
        )
    if study.mode not in ("max", "min"):
        raise StudyError(f"mode={study.mode!r} is not valid; choose 'max' or 'min'")
    if not study.stages:
        raise StudyError(f"study {study.name!r} has no stages")
    unknown_asha = set(study.asha) - {"grace_period", "reduction_factor"}
    if unknown_asha:
        raise StudyError(
            f"unknown asha setting(s) {sorted(unknown_asha)}; valid: grace_period, reduction_factor"
        )
    seen: list[str] = []
    for stage in study.stages:
        if not stage.name.replace("-", "").replace("_", "").isalnum():
            raise StudyError(f"stage name {stage.name!r} must be letters, digits, '-' or '_'")
        if stage.name in seen or stage.name == "evaluation":
            raise StudyError(f"stage name {stage.name!r} is used twice or reserved")
        if stage.scheduler not in SCHEDULERS:
            raise StudyError(
                f"stage {stage.name!r}: scheduler={stage.scheduler!r} is not valid; "
                f"choose one of {SCHEDULERS}"
            )
        if stage.search not in SEARCHERS:
            raise StudyError(
                f"stage {stage.name!r}: search={stage.search!r} is not valid; "
                f"choose one of {SEARCHERS}"
            )
        valid_inherit = ["previous", "base", *seen]
        if stage.inherit not in valid_inherit:
            raise StudyError(
                f"stage {stage.name!r}: inherit={stage.inherit!r} is not valid; "
                f"choose one of {valid_inherit}"
            )
        if stage.num_samples < 1:
            raise StudyError(f"stage {stage.name!r}: num_samples={stage.num_samples} must be >= 1")
        seen.append(stage.name)
