"""Build and run the Ray Tune Tuner of one stage, and turn its results into trial records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from orchestrator.interrupts import SignalWatch
from orchestrator.live_view import StageProgress, stage_board
from orchestrator.plan import StagePlan
from orchestrator.searcher import PlannedSearcher
from orchestrator.study import Study
from orchestrator.timeline import TIMELINE_LOG, TimelineRecorder
from trainables.data import DataBundle
from trainables.loop import TrialSetup
from trainables.storage import Location
from trainables.trainable import train


@dataclass(frozen=True)
class Resources:
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0  # fractions (0.25) put several trials on one GPU
    max_concurrent: int = 0  # 0 = as many as resources allow
    seed: int = 0


def trial_slots(resources: Resources, trials: int) -> int:
    """How many of a stage's `trials` run at once: what the cluster's CPUs and GPUs hold at the
    trial's request, capped by --max-concurrent and by the number of trials.

    Given to Tune as `max_concurrent_trials`. Without it Tune starts one trial at a time with
    any searcher of its own kind (ours, Optuna): its pending-trial limit is then 1, and the
    next trial only starts once the one before is running (measured on one H200: 8 trials
    strictly one after another, 47% of the wall time training). With the limit set, Tune wraps
    the searcher in a ConcurrencyLimiter and starts that many trials together.
    """
    import ray

    return slots_for(ray.cluster_resources(), resources, trials)


def single_node() -> bool:
    import ray

    return sum(1 for n in ray.nodes() if n.get("Alive")) == 1


def slots_for(have: dict[str, float], resources: Resources, trials: int) -> int:
    """trial_slots' arithmetic, given the cluster's resources."""
    fits = [int(have.get("CPU", 0) // resources.cpus_per_trial)] if resources.cpus_per_trial else []
    if resources.gpus_per_trial:
        # A fraction such as 0.25 packs 4 trials per GPU; the epsilon keeps 1/0.1 = 10, not 9.
        fits.append(int(have.get("GPU", 0) / resources.gpus_per_trial + 1e-9))
    # None fits yet: a joined cluster that may scale up (check_resources said so); let Tune
    # queue every trial rather than pin the stage to one slot.
    slots = min(fits) if fits and min(fits) > 0 else trials
    if resources.max_concurrent:
        slots = min(slots, resources.max_concurrent)
    return max(1, min(slots, max(trials, 1)))


def make_trainable(bundle: DataBundle, setup: TrialSetup, resources: Resources) -> Any:
    # with_parameters puts the decoded arrays into Ray's object store once; every trial maps
    # them read-only instead of decoding or pickling the data set again.
    trainable = tune.with_parameters(train, bundle=bundle, setup=setup)
    return tune.with_resources(
        trainable, {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial}
    )


ASHA_LOG = "asha_decisions.jsonl"


class RecordingASHA(ASHAScheduler):
    """ASHA that writes each early stop (trial, epoch, value) to the stage folder.

    Ray does not say why a trial ended; this record is what lets study.json call a trial
    "asha_stopped" only when ASHA really stopped it (not when it was interrupted).
    """

    def __init__(
        self, log_path: str, *, metric: str, time_attr: str, max_t: int, **kwargs: Any
    ) -> None:
        # metric/mode reach ASHA through TuneConfig (Ray refuses them in both places); our own
        # copies name what the log records without reading ASHA's private attributes.
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self.log_path = log_path
        self.logged_metric, self.logged_time_attr, self.logged_max_t = metric, time_attr, max_t

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if action == self.STOP and result.get(self.logged_time_attr, 0) < self.logged_max_t:
            line = {
                "trial_id": trial.trial_id,
                "epoch": result.get(self.logged_time_attr),
                "value": result.get(self.logged_metric),
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
        metric=metric,
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


def run_tuner(
    study: Study,
    plan: StagePlan,
    bundle: DataBundle,
    location: Location,
    run_dir: Path,
    resources: Resources,
    metric: str,
    mode: str,
) -> tune.ResultGrid:
    """Fit (or resume) the stage's Tuner and return Ray's results."""
    log_dir = run_dir / plan.stage.name  # ASHA's decision log: the driver's local run dir
    log_dir.mkdir(parents=True, exist_ok=True)
    # Trials find the board by the stage's name (a restored Tuner's StageProgress too).
    with stage_board(plan.stage.name) as board:
        setup = TrialSetup(
            task=study.trainable,
            metric=metric,
            mode=mode,
            constraints=study.constraints,
            progress_board=board.name if board is not None else None,
        )
        trainable = make_trainable(bundle, setup, resources)
        # Planned searches hand Ray whole configs (see make_search); Optuna samples param_space.
        param_space = {**plan.base, **plan.sampled} if plan.stage.search == "optuna" else {}
        stage_dir = location.join(plan.stage.name).ray_path  # Ray's experiment (local or bucket)
        progress = StageProgress(plan, metric, mode, board=board)
        run_config = make_run_config(plan, location, log_dir, progress, metric, mode)
        if tune.Tuner.can_restore(stage_dir):
            tuner = tune.Tuner.restore(
                stage_dir,
                trainable,
                resume_unfinished=True,
                resume_errored=False,
                param_space=param_space,
            )
            # The restored Tuner carries the callbacks pickled when the stage began; StageProgress
            # resets its live view when unpickled and finds this run's board by the stage's name.
            print(
                f"[{plan.stage.name}] resuming the interrupted stage from {stage_dir}", flush=True
            )
        else:
            searcher, num_samples = make_search(plan, metric, mode, resources.seed)
            tuner = tune.Tuner(
                trainable,
                param_space=param_space,
                tune_config=tune.TuneConfig(
                    metric=metric,
                    mode=mode,
                    search_alg=searcher,
                    scheduler=make_scheduler(study, plan, metric, log_dir),
                    num_samples=num_samples,
                    max_concurrent_trials=trial_slots(resources, num_samples),
                    # A finished trial's process (torch imported, CUDA context and cuDNN plans
                    # warm) takes the next trial of the stage instead of a new actor starting.
                    # Only on one node: on a cluster a reused process would pin later trials to
                    # the node that ran the first ones (tests/test_multinode.py).
                    reuse_actors=single_node(),
                    trial_dirname_creator=trial_dirname,
                ),
                run_config=run_config,
            )
        return tuner.fit()


def make_run_config(
    plan: StagePlan,
    location: Location,
    log_dir: Path,
    progress: StageProgress,
    metric: str,
    mode: str,
) -> tune.RunConfig:
    """Where the stage's experiment lives, what the driver logs, and how failures and
    checkpoints are handled."""
    return tune.RunConfig(
        name=plan.stage.name,
        storage_path=location.ray_path,
        verbose=0,
        # Ray's TBX logger is off (see orchestrator.ray_setup); keep JSON + CSV for the report.
        callbacks=[
            JsonLoggerCallback(),
            CSVLoggerCallback(),
            progress,
            TimelineRecorder(str(log_dir / TIMELINE_LOG)),
            SignalWatch(),
        ],
        failure_config=tune.FailureConfig(max_failures=1),
        # Trials write TensorBoard events into their working directory; this syncs them to the
        # run's storage from whichever node ran the trial (each checkpoint and at the end).
        sync_config=tune.SyncConfig(sync_artifacts=True),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=2, checkpoint_score_attribute=metric, checkpoint_score_order=mode
        ),
    )
