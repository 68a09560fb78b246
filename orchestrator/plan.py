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

from ray.tune.search.sample import Domain

from orchestrator.study import Stage, Study, StudyError
from trainables.config import DATA_KEYS, ConfigError, model_config, model_keys, validate_config
from trainables.models import check_constraints, count_parameters, family_fields


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
    grid = {k: v["grid_search"] for k, v in stage.space.items() if is_grid(v)}
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
            f"{sorted(grid)}); use tune.choice for categorical dimensions"
        )
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
        probe = {**config, **{k: _any_value(v) for k, v in sampled.items()}}
        try:
            validate_config(probe, study.trainable)
        except ConfigError as err:
            raise StudyError(f"stage {stage.name!r}: {err}") from None
        points.append(check_point(config, label, study.constraints, data_info, set(sampled)))
    return StagePlan(stage=stage, base=base, sampled=sampled, points=points)


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
    model_cfg = model_config(config, data_info)
    try:
        params = count_parameters(model_cfg)
        violations = [v.message for v in check_constraints(model_cfg, rules)] if rules else []
    except ValueError as err:  # a config the model family cannot build at all
        return PlannedPoint(config=config, label=label, params=None, violations=[str(err)])
    return PlannedPoint(config=config, label=label, params=params, violations=violations)


def _any_value(domain: Domain) -> Any:
    """A representative value of a Ray domain, only for key validation."""
    return domain.sample() if hasattr(domain, "sample") else None
