"""Build and run the Ray Tune Tuner of one stage, and turn its results into trial records."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from orchestrator.plan import StagePlan
from orchestrator.progress import StageProgress
from orchestrator.records import rel
from orchestrator.searcher import PlannedSearcher
from orchestrator.study import Study
from trainables.data import DataBundle
from trainables.loop import TrialSetup
from trainables.trainable import TRAINABLES


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions (0.25) put several trials on one GPU
    max_concurrent: int = 0  # 0 = as many as resources allow
    seed: int = 0


def make_trainable(study: Study, bundle: DataBundle, setup: TrialSetup, resources: Resources):
    fn = TRAINABLES[study.trainable]
    # with_parameters puts the decoded arrays into Ray's object store once; every trial maps
    # them read-only instead of decoding or pickling the data set again.
    trainable = tune.with_parameters(fn, bundle=bundle, setup=setup)
    return tune.with_resources(
        trainable, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    )


ASHA_LOG = "asha_decisions.jsonl"


class RecordingASHA(ASHAScheduler):
    """ASHA that writes each early stop (trial, epoch, value) to the stage folder.

    Ray does not say why a trial ended; this record is what lets study.json call a trial
    "asha_stopped" only when ASHA really stopped it (not when it was interrupted).
    """

    def __init__(self, log_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log_path = log_path

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and result.get(self._time_attr, 0) < self._max_t:
            line = {
                "trial_id": trial.trial_id,
                "epoch": result.get(self._time_attr),
                "value": result.get(self._metric),
            }
            with open(self.log_path, "a") as f:
                f.write(json.dumps(line) + "\n")
        return action


def asha_decisions(stage_dir: Path) -> dict[str, dict[str, Any]]:
    path = stage_dir / ASHA_LOG
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {row["trial_id"]: row for row in rows}


def make_scheduler(study: Study, plan: StagePlan, metric: str, stage_dir: Path) -> Any:
    if plan.stage.scheduler == "fifo":
        return FIFOScheduler()
    # The longest planned trial sets the last rung (a stage may search over `epochs` itself).
    epochs = max([int(p.config["epochs"]) for p in plan.points] or [int(plan.base["epochs"])])
    return RecordingASHA(
        log_path=str(stage_dir / ASHA_LOG),
        time_attr="epoch",
        max_t=epochs,
        grace_period=min(int(study.asha["grace_period"]), epochs),
        reduction_factor=study.asha["reduction_factor"],
    )


def make_search(plan: StagePlan, metric: str, mode: str, seed: int) -> tuple[Any, int]:
    """(search algorithm, num_samples) for the stage."""
    if plan.stage.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        # metric/mode come from TuneConfig; Ray refuses them set in both places.
        searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))
        return searcher, plan.stage.num_samples
    # Whole configs: Ray deep-merges a suggestion into param_space, which would turn a planned
    # `augment={}` into the base's augmentation; with an empty param_space nothing is merged.
    points = [dict(p.config) for p in plan.feasible]
    return PlannedSearcher(points, plan.sampled, seed=seed), len(points)


def trial_dirname(trial: Any) -> str:
    """`3.1-A_<id>` instead of Ray's name built from every config value."""
    label = str(trial.config.get("label") or "trial").replace("/", "-")
    return f"{label}_{trial.trial_id}"


def run_stage(
    study: Study,
    plan: StagePlan,
    bundle: DataBundle,
    run_dir: Path,
    resources: Resources,
    metric: str,
    mode: str,
) -> tune.ResultGrid:
    """Fit (or resume) the stage's Tuner and return Ray's results."""
    setup = TrialSetup(
        task=study.trainable, metric=metric, mode=mode, constraints=study.constraints
    )
    trainable = make_trainable(study, bundle, setup, resources)
    # Planned searches hand Ray whole configs (see make_search); Optuna samples param_space.
    param_space = {**plan.base, **plan.sampled} if plan.stage.search == "optuna" else {}
    stage_dir = run_dir.resolve() / plan.stage.name
    progress = StageProgress(plan, metric, mode)
    run_config = tune.RunConfig(
        name=plan.stage.name,
        storage_path=str(run_dir.resolve()),
        verbose=0,
        # Ray's TBX logger is off (see orchestrator.ray_setup); keep JSON + CSV for the report.
        callbacks=[JsonLoggerCallback(), CSVLoggerCallback(), progress],
        failure_config=tune.FailureConfig(max_failures=1),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=metric, checkpoint_score_order=mode
        ),
    )
    if tune.Tuner.can_restore(str(stage_dir)):
        tuner = tune.Tuner.restore(
            str(stage_dir),
            trainable,
            resume_unfinished=True,
            resume_errored=False,
            param_space=param_space,
        )
        # The restored Tuner carries the callbacks pickled when the stage began (a progress view
        # with stale counts); give it this run's. Ray offers no public setter for this.
        tuner._local_tuner.get_run_config().callbacks = run_config.callbacks
        print(f"[{plan.stage.name}] resuming the interrupted stage from {stage_dir}", flush=True)
    else:
        searcher, num_samples = make_search(plan, metric, mode, resources.seed)
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                search_alg=searcher,
                scheduler=make_scheduler(study, plan, metric, stage_dir),
                num_samples=num_samples,
                max_concurrent_trials=resources.max_concurrent or None,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=run_config,
        )
    results = tuner.fit()
    progress.finish()
    return results


def trial_record(
    result: tune.Result, run_dir: Path, metric: str, mode: str, stops: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One trial of study.json from Ray's result (see docs/interfaces.md)."""
    last = dict(result.metrics or {})
    config = dict(result.config or {})
    history = result.metrics_dataframe
    rows = history.to_dict("records") if history is not None and len(history) else []
    rows = [r for r in rows if metric in r and not r.get("infeasible")]
    trained = [r for r in rows if not r.get("diverged")]
    best_row = None
    for row in trained:
        value = row.get(metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if best_row is None or (
            value > best_row[metric] if mode == "max" else value < best_row[metric]
        ):
            best_row = row
    epochs_run = max((int(r.get("epoch", 0)) for r in rows), default=0)
    trial_id = last.get("trial_id") or Path(result.path).name
    status, reason = stop_status(
        result, last, epochs_run, int(config.get("epochs", 0)), stops.get(trial_id), metric
    )
    best_ckpt = None
    if status != "infeasible":
        try:
            ckpt = result.get_best_checkpoint(metric, mode)
        except (RuntimeError, ValueError):
            ckpt = None
        ckpt = ckpt or result.checkpoint
        best_ckpt = rel(ckpt.path, run_dir) if ckpt is not None else None
    keep = (
        "epoch",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "val_iou",
        "val_dice",
        "val_pixel_acc",
        "train_iou",
        "lr",
        "images_per_s",
        "epoch_time_s",
        "train_time_s",
    )
    return {
        "trial_id": trial_id,
        "label": config.get("label"),
        "config": config,
        "status": status,
        "reason": reason,
        "epochs_run": epochs_run,
        "best_epoch": int(best_row["epoch"]) if best_row else None,
        "final": {k: last[k] for k in keep if k in last},
        "best": {k: best_row[k] for k in keep if best_row and k in best_row},
        "wall_time_s": last.get("time_total_s"),
        "trial_dir": rel(result.path, run_dir),
        "best_checkpoint": best_ckpt,
    }


def stop_status(
    result: tune.Result,
    last: dict,
    epochs_run: int,
    epochs: int,
    asha_stop: dict[str, Any] | None,
    metric: str,
) -> tuple[str, str | None]:
    if last.get("infeasible"):
        return "infeasible", last.get("reason")
    if result.error is not None:
        # The traceback's end names the failing line and exception; 10k characters keep it.
        return "error", str(result.error)[-10_000:]
    if last.get("diverged"):
        return "diverged", last.get("reason")
    if epochs_run >= epochs:
        return "completed", None
    if asha_stop is not None:
        return "asha_stopped", (
            f"stopped by ASHA after {asha_stop['epoch']} of {epochs} epochs "
            f"({metric} {asha_stop['value']:.4f} below the rung's cutoff)"
        )
    return "stopped", f"ended after {epochs_run} of {epochs} epochs without an ASHA decision"


def infeasible_record(point: Any) -> dict[str, Any]:
    return {
        "trial_id": None,
        "label": point.label,
        "config": point.config,
        "params": point.params,
        "status": "infeasible",
        "reason": "; ".join(point.violations),
        "epochs_run": 0,
        "best_epoch": None,
        "final": {},
        "best": {},
        "wall_time_s": 0.0,
        "trial_dir": None,
        "best_checkpoint": None,
    }
