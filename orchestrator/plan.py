"""Turn one stage of a study into concrete trial configs, and reject infeasible ones.

Grid dimensions are expanded here, not by Ray, so that every grid point can be checked against
the study's constraints before anything trains (Ray cannot skip grid points); the feasible points
go to Ray as `points_to_evaluate`. Sampled dimensions (tune.choice, tune.loguniform, ...) stay
Ray's, and sampled configs are checked inside the trial.
"""

from __future__ import annotations

import itertools
import string
from dataclasses import dataclass, field
from typing import Any

import torch
from ray.tune.search.sample import Domain

from orchestrator.study import FromStudy, Stage, Study, StudyError
from trainables.config import (
    DATA_KEYS,
    TRAINER_DEFAULTS,
    ConfigError,
    model_keys,
    validate_config,
)
from trainables.data import DATA_DEFAULTS, list_datasets
from trainables.models import (
    EncoderDecoderModel,
    build_model,
    check_constraints,
    count_parameters,
    family_fields,
)
from trainables.models.registry import parse_config
from trainables.trial_config import TrialConfig


@dataclass
class PlannedPoint:
    config: dict[str, Any]  # full config of the grid point (sampled keys not yet drawn)
    label: str | None
    params: int | None
    violations: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        return not self.violations


@dataclass
class StagePlan:
    stage: Stage
    base: dict[str, Any]  # constants every trial of the stage shares
    sampled: dict[str, Domain]  # Ray domains still to draw
    points: list[PlannedPoint]

    @property
    def feasible(self) -> list[PlannedPoint]:
        return [p for p in self.points if p.feasible]

    @property
    def varied_keys(self) -> list[str]:
        keys: list[str] = []
        for key in self.stage.space:
            keys.extend(key if isinstance(key, tuple) else [key])
        return keys


def is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


def letters(n: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ... in order."""
    out: list[str] = []
    for size in itertools.count(1):
        for combo in itertools.product(string.ascii_uppercase, repeat=size):
            if len(out) == n:
                return out
            out.append("".join(combo))
    return out


def point_labels(label: str | None, n: int) -> list[str | None]:
    if label is None:
        return [None] * n
    if n == 1:
        return [label]
    return [f"{label}-{letter}" for letter in letters(n)]


def unpack(point: dict[Any, Any]) -> dict[str, Any]:
    """Joint grid keys: {("channels", "blocks"): ((64, 128), (2, 2))} -> two config keys.

    Dimensions that only make sense together (a 3-stage channel scheme needs 3 block counts)
    are one grid dimension with a tuple key.
    """
    out: dict[str, Any] = {}
    for key, value in point.items():
        if isinstance(key, tuple):
            if not isinstance(value, list | tuple) or len(value) != len(key):
                raise StudyError(
                    f"grid value {value!r} for joint key {key} must have "
                    f"{len(key)} items, one per key"
                )
            out.update(zip(key, value, strict=True))
        else:
            out[key] = value
    return out


def stage_base(
    study: Study, stage: Stage, inherited: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """The constants of a stage: base, then the inherited best config, the stage's own
    values, then command-line overrides.

    A stage that switches model family (`config={"model": "simple_cnn", ...}`) drops the fields
    of the family it inherited that the new one does not have, so a CNN stage can follow a
    ResNet stage; unknown keys are still errors.
    """
    config = {**study.base, **inherited}
    new_family = stage.config.get("model")
    if new_family and config.get("model") and new_family != config["model"]:
        old_fields = set(family_fields(config["model"]))
        keep = set(family_fields(new_family))
        config = {k: v for k, v in config.items() if k not in old_fields or k in keep}
    return {**config, **stage.config, **overrides}


def plan_stage(
    study: Study, stage: Stage, stage_base: dict[str, Any], data_info: dict[str, Any]
) -> StagePlan:
    """Expand a stage's grid over `stage_base` and check every point."""
    grid, sampled, constants = split_space(stage)
    base = {**stage_base, **constants}
    combos = [
        unpack(dict(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())
    ]
    repeats = stage.num_samples if stage.search == "random" else 1
    combos = [c for c in combos for _ in range(repeats)]
    if stage.search == "optuna":
        combos = [{}]  # Optuna proposes the configs; one check of the constants is still useful
    labels = point_labels(stage.label, len(combos)) if stage.search != "optuna" else [None]

    points = []
    for combo, label in zip(combos, labels, strict=True):
        config = {**base, **combo}
        if label is not None:
            config["label"] = label
        _validate(study, stage, {**config, **{k: _any_value(v) for k, v in sampled.items()}})
        points.append(check_point(config, label, study.constraints, data_info, set(sampled)))
    return StagePlan(stage=stage, base=base, sampled=sampled, points=points)


def split_space(stage: Stage) -> tuple[dict[Any, list], dict[str, Domain], dict[Any, Any]]:
    """(grid dimensions, sampled dimensions, constants) of a stage's space, checked.

    Raises:
        StudyError: an empty or malformed grid_search, a varied data key, or a grid under Optuna.
    """
    grid: dict[Any, list] = {}
    for key, value in stage.space.items():
        if not is_grid(value):
            continue
        values = value["grid_search"]
        if not isinstance(values, list | tuple):
            raise StudyError(
                f"stage {stage.name!r}: {key!r}: tune.grid_search({values!r}) needs a list of "
                "values, e.g. tune.grid_search([0.1, 0.01])"
            )
        if not values:
            raise StudyError(
                f"stage {stage.name!r}: {key!r}: tune.grid_search([]) is empty, so the stage "
                "would train nothing; give at least one value or drop the key"
            )
        grid[key] = list(values)
    sampled = {k: v for k, v in stage.space.items() if isinstance(v, Domain)}
    constants = {k: v for k, v in stage.space.items() if k not in grid and k not in sampled}
    flat_keys = set(unpack({k: k for k in grid})) | set(sampled)
    data_varied = sorted(flat_keys & DATA_KEYS)
    if data_varied:
        raise StudyError(
            f"stage {stage.name!r} varies data key(s) {data_varied}; data is decoded once per "
            "stage and shared by its trials, so put different data sets in different stages"
        )
    if stage.search == "optuna" and grid:
        raise StudyError(
            f"stage {stage.name!r}: search='optuna' cannot take tune.grid_search (keys "
            f"{sorted(map(str, grid))}); use tune.choice for categorical dimensions"
        )
    return grid, sampled, constants


def validate_stage_keys(study: Study, stage: Stage, config: dict[str, Any]) -> list[dict[str, Any]]:
    """Check a stage's keys and values on `config` (its constants: base, inherited values, its
    own config, overrides) and every grid point, without data or parameter counts: what can be
    checked before Ray starts and study.json is written.

    Returns the stage's point configs (sampled keys at a representative value), which stand in
    for the config a later stage inherits.

    Raises:
        StudyError: naming the stage, the bad key or value and what would be valid.
    """
    grid, sampled, constants = split_space(stage)
    drawn = {k: _any_value(v) for k, v in sampled.items()}
    combos = [
        unpack(dict(zip(grid, values, strict=True))) for values in itertools.product(*grid.values())
    ]
    points = []
    for combo in combos or [{}]:
        probe = {**config, **constants, **combo, **drawn}
        _validate(study, stage, probe)
        _check_dataset(stage, probe)
        _check_model_fields(stage, probe)
        points.append(probe)
    return points


def validate_study_keys(study: Study, overrides: dict[str, Any]) -> None:
    """`validate_stage_keys` for every stage, in order, before anything runs.

    A stage's inherited config is not known until its source stage has trained, so each stage
    is checked against the points of its source stage; it passes when it is valid on top of at
    least one of them (the best one is one of them), so a stage that switches model family or
    inherits keys a previous stage set is not refused.
    """
    points: dict[str, list[dict[str, Any]]] = {}
    for index, stage in enumerate(study.stages):
        if stage.inherit == "base" or index == 0:
            candidates: list[dict[str, Any]] = [{}]
        else:
            source = study.stages[index - 1].name if stage.inherit == "previous" else stage.inherit
            candidates = [
                {k: v for k, v in p.items() if k not in ("label", "max_batches")}
                for p in points[source]
            ]
        first_error: StudyError | None = None
        for inherited in candidates:
            try:
                points[stage.name] = validate_stage_keys(
                    study, stage, stage_base(study, stage, inherited, overrides)
                )
                break
            except StudyError as err:
                first_error = first_error or err
        else:
            assert first_error is not None
            raise first_error


def _validate(study: Study, stage: Stage, probe: dict[str, Any]) -> None:
    try:
        validate_config(probe, study.trainable)
    except ConfigError as err:
        raise StudyError(f"stage {stage.name!r}: {err}") from None


def _check_dataset(stage: Stage, probe: dict[str, Any]) -> None:
    dataset = probe.get("dataset", DATA_DEFAULTS["dataset"])
    if dataset not in list_datasets():
        raise StudyError(
            f"stage {stage.name!r}: dataset={dataset!r} is not a data set; valid: "
            + ", ".join(list_datasets())
        )


# Model fields the data decides (model_config fills them in); unknown before the data loads.
DATA_FIELDS = ("num_classes", "in_channels", "image_size")


def _check_model_fields(stage: Stage, probe: dict[str, Any]) -> None:
    """Parse the model part (activation names, widths, ...) as the family would, so a bad
    value fails now instead of marking every point infeasible at plan time."""
    model_cfg = {k: v for k, v in probe.items() if k in model_keys(probe) and k not in DATA_FIELDS}
    if any(_has_reference(v) for v in model_cfg.values()):
        return  # FromStudy values are resolved at run time
    try:
        parse_config(model_cfg)
    except (ValueError, TypeError) as err:
        if any(name in str(err) for name in DATA_FIELDS):
            return  # depends on what the data set provides; plan_stage checks it with the data
        raise StudyError(f"stage {stage.name!r}: model {model_cfg['model']!r}: {err}") from None


def _has_reference(value: Any) -> bool:
    if isinstance(value, FromStudy):
        return True
    if isinstance(value, dict):
        return any(_has_reference(v) for v in value.values())
    return False


def check_point(
    config: dict[str, Any],
    label: str | None,
    rules: dict[str, Any],
    data_info: dict[str, Any],
    sampled_keys: set[str],
) -> PlannedPoint:
    """Count parameters on the meta device and check the rules (skipped for sampled model keys)."""
    if sampled_keys & model_keys(config):
        return PlannedPoint(config=config, label=label, params=None)
    model_cfg = TrialConfig.from_dict(config).model_config(data_info)
    try:
        params = count_parameters(model_cfg)
        violations = [v.message for v in check_constraints(model_cfg, rules)] if rules else []
    except ValueError as err:  # a config the model family cannot build at all
        return PlannedPoint(config=config, label=label, params=None, violations=[str(err)])
    check_encoder_keys(config, model_cfg, label)
    return PlannedPoint(config=config, label=label, params=params, violations=violations)


# Trainer keys that only act on a model with a pretrained encoder (EncoderDecoderModel).
ENCODER_KEYS = ("freeze_schedule", "encoder_lr_mult", "unfreeze_stages")


def check_encoder_keys(
    config: dict[str, Any], model_cfg: dict[str, Any], label: str | None
) -> None:
    """A freeze schedule (or encoder LR) on a model without an encoder would be silently
    ignored; it is a config error instead."""
    default = TRAINER_DEFAULTS
    set_keys = [k for k in ENCODER_KEYS if config.get(k, default[k]) != default[k]]
    if not set_keys:
        return
    with torch.device("meta"):
        model = build_model(model_cfg)
    if not isinstance(model, EncoderDecoderModel):
        where = f" ({label})" if label else ""
        raise StudyError(
            f"{', '.join(f'{k}={config[k]!r}' for k in set_keys)}{where}: model "
            f"{model_cfg['model']!r} has no encoder to freeze; these keys act only on "
            "encoder/decoder models such as 'unet_backbone'"
        )


def _any_value(domain: Domain) -> Any:
    """A representative value of a Ray domain, only for key validation."""
    try:
        return domain.sample()
    except Exception:  # a sample_from that needs a spec: the key is still checked, not its value
        return None
