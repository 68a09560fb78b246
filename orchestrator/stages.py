"""One stage of a study, as a list of steps: config -> data -> plan -> Ray Tune -> records.

`run_stage` reads as the course does: start from the best configuration of the stage before,
reject infeasible points, train the rest, pick the best, evaluate it on the test split.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from orchestrator import interrupts, ray_setup
from orchestrator.interrupts import Interrupted
from orchestrator.plan import StagePlan, plan_stage, stage_base, validate_study_keys
from orchestrator.records import (
    FRESH_HINT,
    StudyFile,
    infeasible_record,
    pick_best,
    trial_record,
)
from orchestrator.references import resolve_references
from orchestrator.reuse import reuse_earlier_trials
from orchestrator.study import Stage, Study, StudyError
from orchestrator.timeline import attach_timelines, write_tensorboard
from orchestrator.tuner import ASHA_LOG, Resources, asha_decisions, run_tuner, trial_slots
from trainables.config import bundle_info
from trainables.contract import BestRecord, StageRecord, TrialRecord, jsonable
from trainables.data import DataBundle
from trainables.data.source import BundleCache, data_summary
from trainables.evaluate import evaluate_state, write_evaluation
from trainables.models import build_model, count_parameters
from trainables.ray_io import load_state
from trainables.run_dir import EVALUATION_FOLDER
from trainables.storage import Location
from trainables.trial_config import TrialConfig


@dataclass
class RunContext:
    """What every stage of one `orchestrator.run` invocation shares."""

    study: Study
    journal: StudyFile
    data: BundleCache
    resources: Resources
    metric: str
    mode: str
    overrides: dict[str, Any]  # --set values, plus the smoke budget with --smoke
    storage: Location  # the folder or bucket that holds run directories (FromStudy looks here)
    start_ray: Callable[[], None]  # idempotent; called when a stage is about to train
    scheduler: str | None = None  # --scheduler: overrides every stage's for this run

    @property
    def run_dir(self) -> Path:
        """The local run directory (for remote storage: its local mirror)."""
        return self.journal.run_dir

    @property
    def location(self) -> Location:
        """Where the run lives: what Ray writes to and what study.json's paths are relative to."""
        return self.journal.location


def run_stage(ctx: RunContext, stage: Stage) -> None:
    began = time.time()  # the stage's wall time includes its data, Ray start and evaluation
    srec = ctx.journal.stage(stage.name)
    base = stage_config(ctx, stage)
    if ctx.scheduler:  # after stage_config, which finds the stage in the study by equality
        stage = replace(stage, scheduler=ctx.scheduler)
    refuse_edited_stage(srec, stage, base)
    if srec.status == "finished":
        best = srec.best.label or srec.best.trial_id if srec.best else "none (no trial ranked)"
        print(f"[{stage.name}] finished earlier; best: {best}")
        return
    base = resolve_references(base, ctx.storage)
    bundle = ctx.data.get(base)
    srec.data = ctx.journal.record.data = data_summary(bundle)
    full_plan = plan_stage(ctx.study, stage, base, bundle_info(bundle))
    plan, reused = reuse_earlier_trials(ctx.journal.record, full_plan, bundle_info(bundle))
    for t in reused:
        print(f"[{stage.name}] {t.name}: {t.reason}; not trained again", flush=True)
    ctx.start_ray()
    start_stage(ctx, srec, full_plan, stage, base)
    trials = srec.trials + reused + train_stage(ctx, plan, bundle)
    order = {p.label: i for i, p in enumerate(full_plan.points)}
    trials.sort(key=lambda t: (order.get(t.label, len(order)), t.trial_id or ""))
    srec.trials, srec.best = trials, pick_best(trials, ctx.metric, ctx.mode)
    srec.best_model = best_model_text(srec.best, bundle)
    ctx.journal.save()
    evaluated_from = time.time()
    if stage.evaluate and srec.best and srec.best.checkpoint:
        evaluate_best(ctx, stage, srec.best, bundle)
    # Finished only now: a run stopped during evaluation redoes it on resume.
    interrupts.stop_if_requested(stage.name)
    srec.status = "finished"
    end_stage_timeline(ctx, srec, plan, began, time.time() - evaluated_from)
    ctx.journal.save()


def end_stage_timeline(
    ctx: RunContext, srec: StageRecord, plan: StagePlan, began: float, evaluation_s: float
) -> None:
    """The stage's span and slots into study.json, the run's timeline into TensorBoard."""
    expected = len(plan.feasible) if plan.stage.search != "optuna" else plan.stage.num_samples
    spans = [*srec.timeline.get("spans", []), [began, time.time()]]
    srec.timeline = {
        "spans": spans,
        "slots": trial_slots(ctx.resources, expected) if expected else 0,
        "evaluation_s": evaluation_s,
    }
    folder = write_tensorboard(ctx.run_dir, ctx.journal.record)
    for event_file in folder.glob("events.out.tfevents.*") if folder else []:
        ctx.journal.publish(event_file)


def validate_stages(study: Study, overrides: dict[str, Any]) -> None:
    """Every stage's keys and values, before Ray starts, data loads or study.json is written."""
    validate_study_keys(study, overrides)


def stage_config(ctx: RunContext, stage: Stage) -> dict[str, Any]:
    """The stage's constants: base, the inherited best config, its own values, overrides."""
    return stage_base(ctx.study, stage, inherited_config(ctx, stage), ctx.overrides)


def inherited_config(ctx: RunContext, stage: Stage) -> dict[str, Any]:
    index = ctx.study.stages.index(stage)
    if stage.inherit == "base" or index == 0:
        return {}
    source = ctx.study.stages[index - 1].name if stage.inherit == "previous" else stage.inherit
    best = ctx.journal.stage(source).best
    if best is None:
        raise StudyError(
            f"stage {stage.name!r} inherits from {source!r}, which has no trained "
            "configuration (every trial was infeasible or failed); see study.json"
        )
    return {k: v for k, v in best.config.items() if k not in ("label", "max_batches")}


def plan_description(stage: Stage, base: dict[str, Any]) -> dict[str, Any]:
    """What a stage will run, as JSON: its constants, search space and scheduling."""
    return jsonable(
        {
            "base": base,
            "space": {str(k): describe_dimension(v) for k, v in stage.space.items()},
            "scheduler": stage.scheduler,
            "search": stage.search,
            "num_samples": stage.num_samples,
            "evaluate": stage.evaluate,
        }
    )


def describe_dimension(value: Any) -> Any:
    """A search dimension as JSON: grid lists as they are, Ray domains by type and bounds."""
    if isinstance(value, dict):
        return value
    if hasattr(value, "sampler"):  # a ray.tune Domain (Float, Integer, Categorical)
        fields = {k: v for k, v in vars(value).items() if k != "sampler"}
        return {"domain": type(value).__name__, **fields, "sampler": repr(type(value.sampler))}
    return value


def refuse_edited_stage(srec: StageRecord, stage: Stage, base: dict[str, Any]) -> None:
    """A stage that ran with another plan than the study file now gives is refused, naming the
    change: its results (or its restored Ray experiment) would not match the file."""
    if srec.plan is None or srec.status == "pending":
        return
    changes = plan_changes(srec.plan, plan_description(stage, base))
    if changes:
        raise StudyError(
            f"stage {stage.name!r} ran with another plan than the study file now gives "
            f"({'; '.join(changes)}). {FRESH_HINT[0].upper()}{FRESH_HINT[1:]}"
        )


def plan_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """`key: old -> new` for every difference between two plan descriptions."""
    changes = []
    for part in sorted(set(old) | set(new)):
        a, b = old.get(part), new.get(part)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [
                f"{part}.{k}: {a.get(k)!r} -> {b.get(k)!r}"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            ]
        elif a != b:
            changes.append(f"{part}: {a!r} -> {b!r}")
    return changes


def start_stage(
    ctx: RunContext, srec: StageRecord, plan: StagePlan, stage: Stage, base: dict[str, Any]
) -> None:
    """Record the stage as running, with its infeasible points and its plan."""
    infeasible = [infeasible_record(p) for p in plan.points if not p.feasible]
    for t in infeasible:
        print(f"[{stage.name}] infeasible {t.label or ''}: {t.reason}", flush=True)
    description = plan_description(stage, base)
    srec.title = stage.title or stage.name
    srec.label = stage.label
    srec.status = "running"
    srec.epochs = plan.base["epochs"]
    srec.scheduler = stage.scheduler
    srec.search = stage.search
    srec.compare = plan.varied_keys
    srec.trials = infeasible
    srec.plan = description
    ctx.journal.save()


def train_stage(ctx: RunContext, plan: StagePlan, bundle: DataBundle) -> list[TrialRecord]:
    """Run (or resume) the stage's feasible trials; their study.json records."""
    if not plan.feasible and plan.stage.search != "optuna":
        return []
    # The user's stop first: Ray may have ended the trials it interrupted as TERMINATED.
    with interrupts.tune_fit(plan.stage.name):
        results = run_tuner(
            ctx.study,
            plan,
            bundle,
            ctx.location,
            ctx.run_dir,
            ctx.resources,
            ctx.metric,
            ctx.mode,
        )
    expected = len(plan.feasible) if plan.stage.search != "optuna" else plan.stage.num_samples
    if len(results) < expected or results.num_terminated + results.num_errors < len(results):
        raise Interrupted(plan.stage.name)
    log = ctx.run_dir / plan.stage.name / ASHA_LOG
    if log.is_file():
        ctx.journal.publish(log)
    stops = asha_decisions(log.parent)
    trials = []
    for result in results:
        trial = trial_record(result, ctx.location, ctx.metric, ctx.mode, stops)
        trial.params = trial_params(trial.config, bundle)
        trials.append(trial)
    if unended := [t for t in trials if not ended_by_training(t)]:
        names = ", ".join(t.label or t.trial_id or "?" for t in unended)
        raise Interrupted(f"{plan.stage.name}: {names} did not end by training")
    res = ctx.resources
    attach_timelines(trials, log.parent, res.cpus_per_trial, res.gpus_per_trial)
    return trials


def ended_by_training(trial: TrialRecord) -> bool:
    """Completed, stopped by ASHA or early stopping, diverged, failed: what training decides.
    "stopped" without such a decision is a trial someone else ended (the user's interrupt)."""
    return trial.status != "stopped" or bool(trial.final.get("early_stopped"))


def best_model_text(best: BestRecord | None, bundle: DataBundle) -> str | None:
    """print(model) of the best configuration, built on the meta device (no weights)."""
    if best is None:
        return None
    model_cfg = TrialConfig.from_dict(best.config).model_config(bundle_info(bundle))
    with torch.device("meta"):
        model = build_model(model_cfg)
    params = sum(p.numel() for p in model.parameters())
    return f"{model_cfg['model']}: {params:,} parameters\n{model}"


def trial_params(config: dict[str, Any], bundle: DataBundle) -> int | None:
    try:
        return count_parameters(TrialConfig.from_dict(config).model_config(bundle_info(bundle)))
    except ValueError:  # a sampled config the family cannot build; the trial says why
        return None


def evaluate_best(ctx: RunContext, stage: Stage, best: BestRecord, bundle: DataBundle) -> None:
    """Test-set evaluation of the stage's best checkpoint, as a Ray task with a trial's
    resources (on a cluster: on a GPU worker); the driver writes evaluation/<stage>.json/.npz."""
    checkpoint = ctx.location.join(str(best.checkpoint))
    state = load_state(checkpoint.uri)
    record, arrays = ray_setup.run_task(
        evaluate_state,
        state,
        bundle,
        ctx.study.trainable,
        stage.name,
        best.trial_id,
        cpus=ctx.resources.cpus_per_trial,
        gpus=ctx.resources.gpus_per_trial,
    )
    record.checkpoint = best.checkpoint
    path = write_evaluation(ctx.run_dir / EVALUATION_FOLDER, record, arrays)
    ctx.journal.publish(path.with_suffix(".npz"))
    ctx.journal.publish(path)
    ctx.journal.record.evaluations[stage.name] = path.relative_to(ctx.run_dir).as_posix()
    ctx.journal.save()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in record.metrics.items())
    print(f"[{stage.name}] test set: {shown}", flush=True)
