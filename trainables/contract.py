"""The run-to-report contract: metric names, statuses and the records of study.json.

One owner for every fact that the writer (orchestrator, trainables) and the reader (analysis)
share. This module imports nothing but the standard library, so a laptop that only reports can
import it without torch or Ray.

Every record field that the report renders carries ``metadata={"rendered": True}`` (see
:func:`rendered`). ``tests/test_contract.py`` runs a real tiny study and fails when such a field
has no producer: that is how the wave-1 gradient-flow figure, drawn from a field only a test
fixture wrote, would have been caught.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

# study.json format. 1: wave 1 (no "format" key). 2: records of this module, "format": 2.
FORMAT = 2
READABLE_FORMATS = (1, 2)

TASKS = ("classification", "segmentation")

# --- metric names ------------------------------------------------------------------------------
# Per-epoch metrics every trial reports, whatever its task.
EPOCH_COMMON = (
    "epoch",
    "lr",
    "diverged",
    "early_stopped",
    "train_time_s",
    "epoch_time_s",
    "images_per_s",
)
# Per-epoch metrics by task. Segmentation also reports *_acc (= pixel accuracy) so tables that
# show accuracy work for both tasks.
EPOCH_METRICS = {
    "classification": ("train_loss", "train_acc", "val_loss", "val_acc"),
    "segmentation": (
        "train_loss",
        "train_iou",
        "train_dice",
        "train_pixel_acc",
        "train_acc",
        "val_loss",
        "val_iou",
        "val_dice",
        "val_pixel_acc",
        "val_acc",
    ),
}
# Reported only by models with a frozen/unfrozen encoder.
EPOCH_ENCODER = ("encoder_frozen", "encoder_update_norm")
# Set on an epoch that a trial reports again when it starts (the last start trained and
# checkpointed it, but Ray never logged it): the value is the node of the new start. The row's
# other fields, "node" included, describe the start that trained it.
REPORTED_AGAIN = "reported_again_on"
# Metrics a study may rank trials by (Study.metric), and the default (metric, mode) per task.
# TensorBoard's HParams tab shows the same metrics (trainables/tb_logger.py).
SELECTABLE_METRICS = {
    "classification": ("val_acc", "val_loss", "train_acc", "train_loss"),
    "segmentation": ("val_iou", "val_dice", "val_pixel_acc", "val_loss", "train_loss"),
}
DEFAULT_METRIC = {"classification": ("val_acc", "max"), "segmentation": ("val_iou", "max")}
# Test-set metrics of an evaluation.
TEST_METRICS = {
    "classification": ("test_acc", "test_macro_f1", "test_loss", "inference_ms_per_image"),
    "segmentation": (
        "test_iou",
        "test_dice",
        "test_pixel_acc",
        "test_loss",
        "inference_ms_per_image",
    ),
}


def epoch_metric_names(task: str) -> tuple[str, ...]:
    """Every per-epoch key a trial of `task` reports (what study.json's final/best keep)."""
    return EPOCH_COMMON + EPOCH_METRICS[task]


def kept_metric_names() -> tuple[str, ...]:
    """Per-epoch keys kept in a trial record's `final` and `best`, for either task."""
    seen: dict[str, None] = dict.fromkeys(EPOCH_COMMON)
    for task in TASKS:
        seen.update(dict.fromkeys(EPOCH_METRICS[task]))
    seen.update(dict.fromkeys(EPOCH_ENCODER))
    return tuple(seen)


# --- statuses ----------------------------------------------------------------------------------
TRIAL_STATUSES = ("completed", "asha_stopped", "stopped", "diverged", "error", "infeasible")
# Statuses a study's exit code accepts as "finished" (an errored trial gives a non-zero exit).
TRIAL_FINISHED_OK = ("completed", "asha_stopped", "diverged", "infeasible")
# Trials whose metrics may be ranked (an infeasible or crashed trial has none that count).
TRIAL_RANKED = ("completed", "asha_stopped", "stopped", "diverged")
STAGE_STATUSES = ("pending", "running", "finished")
STUDY_STATUSES = ("running", "interrupted", "finished")


# --- comparisons -------------------------------------------------------------------------------
def check_mode(mode: str) -> str:
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r} is not valid; choose 'max' or 'min'")
    return mode


def is_finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def is_better(mode: str, a: Any, b: Any) -> bool:
    """Is `a` better than `b` under `mode` ("max" | "min")?

    A non-finite or missing `a` is never better; anything finite beats a missing or non-finite
    `b`, so the first finite value of a series always becomes its best.
    """
    check_mode(mode)
    if not is_finite_number(a):
        return False
    if not is_finite_number(b):
        return True
    return float(a) > float(b) if mode == "max" else float(a) < float(b)


def worst_value(mode: str) -> float:
    """The value a metric gets when a trial has none that counts (diverged, infeasible)."""
    return -math.inf if check_mode(mode) == "max" else math.inf


def best_of(items: list[Any], value_of: Any, mode: str) -> Any:
    """The item with the best finite `value_of(item)`, or None."""
    best, best_value = None, None
    for item in items:
        value = value_of(item)
        if is_better(mode, value, best_value):
            best, best_value = item, value
    return best


# The epochs of a trial whose config sets none: trainables/config.py's default, here so that the
# report (which must not import torch) reads the same value.
DEFAULT_EPOCHS = 10


def planned_epochs(config: dict[str, Any], default: int = DEFAULT_EPOCHS) -> int:
    """The epochs a trial of `config` trains when nothing stops it: `epochs` x `epoch_fraction`
    (a searched fraction of the stage's epoch budget, so `--smoke`'s epochs=1 still shortens a
    study that searches the run length), at least 1. Read by the loop and by the report."""
    epochs = int(config.get("epochs", default))
    return max(1, round(epochs * float(config.get("epoch_fraction", 1.0))))


# --- records -----------------------------------------------------------------------------------
def rendered(default: Any = None, *, factory: Any = None, when: str | None = None) -> Any:
    """A record field that the report renders; `when` names the situation that produces it
    ("evaluated", "segmentation", ...), for the contract test."""
    meta = {"rendered": True, "when": when}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


class RecordError(ValueError):
    """A record that does not follow the contract; the message names the field and the value."""


def _from_dict(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass `cls` from a JSON object, checking the types of known fields.

    Unknown keys are kept out (a newer writer may add fields); a field of the wrong JSON type is
    an error naming it, never a crash three modules later.
    """
    if not isinstance(raw, dict):
        raise RecordError(f"{where} must be a JSON object, got {type(raw).__name__}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        expected = _JSON_TYPES.get(f.name)
        if value is not None and expected is not None and not isinstance(value, expected):
            raise RecordError(
                f"{where}.{f.name} must be {_type_names(expected)}, got {type(value).__name__} "
                f"{value!r:.60}"
            )
        kwargs[f.name] = value
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise RecordError(f"{where} lacks {', '.join(missing)}")
    return cls(**kwargs)


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


# JSON types of record fields that readers index into (checked by _from_dict).
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "config": (dict,),
    "final": (dict,),
    "best": (dict,),
    "metrics": (dict,),
    "data": (dict,),
    "constraints": (dict,),
    "evaluations": (dict,),
    "stages": (list,),
    "trials": (list,),
    "compare": (list,),
    "per_class": (list,),
    "confusion": (list,),
    "most_confused": (list,),
    "grad_norms": (list,),
    "val_metrics": (dict,),
    "preprocessing": (dict,),
    "architecture": (list,),
    "val_size": (int,),
    "attempts": (list,),
    "timeline": (dict,),
    "plan": (dict,),
    "best_model": (str,),
    "class_names": (list,),
    "params": (int,),
    "epochs_run": (int,),
    "best_epoch": (int,),
    "epochs": (int,),
    "wall_time_s": (int, float),
    "name": (str,),
    "status": (str,),
    "trainable": (str,),
    "study": (str,),
    "metric": (str,),
    "mode": (str,),
    "label": (str,),
    "title": (str,),
    "reason": (str,),
    "description": (str,),
    "trial_id": (str,),
    "checkpoint": (str,),
    "trial_dir": (str,),
    "best_checkpoint": (str,),
}


@dataclass
class TrialRecord:
    """One trial of a stage: what it ran, how it ended, its best and final epoch."""

    trial_id: str | None = None  # None for an infeasible grid point (never started)
    label: str | None = rendered()  # the course's name, e.g. "3.2-B"
    config: dict[str, Any] = rendered(factory=dict)  # the effective flat config
    params: int | None = rendered()
    status: str = rendered("error")
    reason: str | None = rendered(when="not completed")  # why it ended early, failed, is infeasible
    epochs_run: int = rendered(0)
    best_epoch: int | None = rendered()
    final: dict[str, float] = rendered(factory=dict)  # metrics of the last epoch
    best: dict[str, float] = rendered(factory=dict)  # metrics of the best epoch
    wall_time_s: float | None = rendered()
    trial_dir: str | None = None  # relative to the run directory
    best_checkpoint: str | None = None
    # One entry per start of the trial: {"node": ip or host, "from_epoch": N, "error": text|None}.
    attempts: list[dict[str, Any]] = field(default_factory=list)
    reused_from: str | None = None  # a trial of an earlier stage whose result this one reuses
    # The driver's record of each attempt (orchestrator/timeline.py): {"spans": [{start, end,
    # started_at, actor_start_s, setup_s, train_s, checkpoint_s, probe_s, epochs, node,
    # status}], "cpus": N, "gpus": F}; times in Unix seconds. Empty for reused/infeasible points.
    timeline: dict[str, Any] = rendered(factory=dict, when="trained")

    @property
    def name(self) -> str:
        return self.label or self.trial_id or "?"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "trial") -> TrialRecord:
        rec = _from_dict(cls, raw, where)
        if rec.status not in TRIAL_STATUSES:
            raise RecordError(
                f"{where}.status={rec.status!r} is not a trial status; valid: {TRIAL_STATUSES}"
            )
        return rec


@dataclass
class BestRecord:
    """The best trial of a stage: what the next stage inherits and what evaluation loads."""

    trial_id: str
    label: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "best") -> BestRecord:
        return _from_dict(cls, raw, where)


@dataclass
class StageRecord:
    name: str
    title: str | None = rendered()
    label: str | None = None
    status: str = "pending"
    epochs: int | None = rendered()
    scheduler: str | None = rendered()  # "asha" | "fifo"
    search: str | None = None  # "grid" | "random" | "optuna"
    compare: list[str] = rendered(factory=list)  # the config keys this stage varies
    trials: list[TrialRecord] = field(default_factory=list)
    best: BestRecord | None = None
    # The stage's best configuration as "<family>: N parameters" + print(model) (course A.7:
    # every stage's best model, evaluated or not).
    best_model: str | None = rendered(when="trained")
    # The stage's plan as it ran (base config, search space, scheduling): a stage edited in the
    # study file after it ran is refused on resume, naming the change, instead of silently kept.
    plan: dict[str, Any] | None = None
    # What the data layer read for this stage (data_summary): stages of one study may use
    # different data sets (C.1: MNIST, then CIFAR-10), and the study's own block is the last's.
    data: dict[str, Any] = field(default_factory=dict)
    # {"spans": [[start, end], ...] one per run of the stage (data, Ray, trials, evaluation),
    # "slots": trials Tune ran at once, "evaluation_s": test-set evaluation seconds}.
    timeline: dict[str, Any] = rendered(factory=dict, when="trained")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["best"] = self.best.to_dict() if self.best else None
        return out

    @classmethod
    def from_dict(cls, raw: Any, where: str = "stage") -> StageRecord:
        rec = _from_dict(cls, raw, where)
        rec.trials = [
            TrialRecord.from_dict(t, f"{where}.trials[{i}]") for i, t in enumerate(rec.trials)
        ]
        if rec.best is not None:
            rec.best = BestRecord.from_dict(rec.best, f"{where}.best")
        if rec.status not in STAGE_STATUSES:
            raise RecordError(f"{where}.status={rec.status!r}; valid: {STAGE_STATUSES}")
        return rec


@dataclass
class StudyRecord:
    """The whole of study.json."""

    study: str
    trainable: str
    metric: str
    mode: str = "max"
    status: str = "running"
    description: str = rendered("")
    constraints: dict[str, Any] = rendered(factory=dict)
    run_settings: dict[str, Any] = field(default_factory=dict)  # --set, --smoke, budget
    data: dict[str, Any] = rendered(factory=dict)  # what the data layer read (data_summary)
    stages: list[StageRecord] = field(default_factory=list)
    evaluations: dict[str, str] = rendered(factory=dict, when="evaluated")  # stage -> json path
    format: int = FORMAT

    def stage(self, name: str) -> StageRecord:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["stages"] = [s.to_dict() for s in self.stages]
        return {"format": self.format, **{k: v for k, v in out.items() if k != "format"}}

    @classmethod
    def from_dict(cls, raw: Any, where: str = "study.json") -> StudyRecord:
        if not isinstance(raw, dict):
            raise RecordError(f"{where} must hold a JSON object, got {type(raw).__name__}")
        fmt = raw.get("format", raw.get("schema_version", 1))
        if fmt not in READABLE_FORMATS:
            raise RecordError(
                f"{where} has format {fmt!r}; this archsweep reads formats {READABLE_FORMATS}. "
                "Update archsweep (pip install -c constraints.txt -e .) on this machine."
            )
        missing = [k for k in ("study", "trainable", "stages") if k not in raw]
        if missing:
            raise RecordError(f"{where} lacks {', '.join(missing)}; is this a study.json?")
        raw = dict(raw)
        raw.setdefault("metric", DEFAULT_METRIC.get(raw["trainable"], ("val_acc", "max"))[0])
        raw.pop("schema_version", None)
        raw["format"] = FORMAT  # read as the current format (fields of 1 are a subset of 2)
        rec = _from_dict(cls, raw, where)
        if rec.trainable not in TASKS:
            raise RecordError(f"{where}.trainable={rec.trainable!r}; valid: {TASKS}")
        check_mode(rec.mode)
        rec.stages = [
            StageRecord.from_dict(s, f"{where}.stages[{i}]") for i, s in enumerate(rec.stages)
        ]
        return rec

    def dumps(self) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=2)


@dataclass
class EvaluationRecord:
    """evaluation/<stage>.json: the test-set evaluation of a stage's best checkpoint.

    Arrays (predictions, sample images, masks) go to evaluation/<stage>.npz beside it.
    """

    stage: str
    trial_id: str | None
    task: str
    checkpoint: str | None = None
    epoch: int | None = None
    class_names: list[str] = rendered(factory=list, when="classification")
    params: int | None = rendered()
    model_summary: str | None = rendered()  # print(model), after describe() for U-Nets
    test_size: int | None = rendered()
    metrics: dict[str, float] = rendered(factory=dict)
    per_class: list[dict[str, Any]] = rendered(factory=list, when="classification")
    confusion: list[list[int]] = rendered(factory=list, when="classification")
    most_confused: list[dict[str, Any]] = rendered(factory=list, when="classification")
    # Per-layer gradient norms of one backward pass on test images: [{"layer", "norm"}].
    grad_norms: list[dict[str, Any]] = rendered(factory=list)
    # The same checkpoint on the whole val split (course B.1: val macro F1 beside val accuracy):
    # val_acc, val_macro_f1, val_loss (classification); val_iou, val_dice, val_pixel_acc,
    # val_loss (segmentation).
    val_size: int | None = rendered()
    val_metrics: dict[str, float] = rendered(factory=dict)
    # The model's input: {"dataset", "source_size" (the data set's own side, None if unknown),
    # "image_size" [H, W], "in_channels", "mean", "std"}; the augmentation is in the trial config.
    preprocessing: dict[str, Any] = rendered(factory=dict)
    # One row per part of the model (input, stem, each stage, head): {"part", "kind", "blocks",
    # "block", "in_shape", "out_shape" [C, H, W] or [classes], "total_stride", "params",
    # "downsamples_at": [{"layer", "kind", "from" [H, W], "to" [H, W]}]}.
    architecture: list[dict[str, Any]] = rendered(factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "evaluation") -> EvaluationRecord:
        missing = [k for k in ("stage", "task") if not isinstance(raw, dict) or k not in raw]
        if missing:
            raise RecordError(f"{where} lacks {', '.join(missing)}")
        raw = {"trial_id": None, **raw}
        return _from_dict(cls, raw, where)


# Files a trial writes into its own folder (trainables/trial_probes.py), read by the report:
# probes.json {"grad_norms": {epoch: [{"layer", "norm"}]}, "receptive_fields": [{"layer",
# "kind", "kernel", "stride", "rf"}], "feature_layers": [names], "feature_sizes": [[H, W] of each
# layer's own output; absent before issue 20], "grad_batches": N} and
# probes.npz {"map_000", ...: (C, H, W) float16 per feature layer, "image": (H, W, C) uint8}.
PROBES_JSON = "probes.json"
PROBES_NPZ = "probes.npz"
PROBES_KEYS = ("grad_norms", "receptive_fields", "feature_layers")

# Beside each checkpoint.pt (trainables/ray_io.report): every epoch the trial has reported up to
# that checkpoint, one row each ({"epoch", "iterations_since_restore", metrics...}). Ray's
# result.json reaches remote storage only with the driver's periodic sync, so a hard stop can
# lose its first rows; the driver restores them from here (orchestrator/history.py).
CHECKPOINT_HISTORY = "history.json"

# Arrays of evaluation/<stage>.npz, by task.
EVALUATION_ARRAYS = {
    "classification": (
        "y_true",
        "y_pred",
        "sample_index",
        "sample_images",
        "sample_true",
        "sample_pred",
    ),
    "segmentation": (
        "y_true",
        "y_pred",
        "sample_index",
        "sample_images",
        "sample_masks_true",
        "sample_masks_pred",
    ),
}


def rendered_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of a record class that the report renders."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("rendered")]


def jsonable(value: Any) -> Any:
    """Config and metric values as JSON (tuples as lists, NaN/inf as strings JSON can hold)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(value.to_dict() if hasattr(value, "to_dict") else dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return jsonable(value.item())
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return repr(value)


# --- the run's timeline (TrialRecord.timeline, StageRecord.timeline) ---------------------------
# Shared by the driver (TensorBoard scalars, orchestrator/timeline.py) and the report's Timeline
# section (analysis/timeline.py). Times are Unix seconds.


def union_length(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, end = 0.0, -float("inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def trial_bar(timeline: dict[str, Any]) -> tuple[float, float] | None:
    """A trial's bar: its first process start (or actor hand-over) to its last end."""
    spans = [s for s in timeline.get("spans", []) if s.get("end") is not None]
    if not spans:
        return None
    first = spans[0]
    return first["start"] - float(first.get("actor_start_s") or 0.0), spans[-1]["end"]


def training_intervals(timeline: dict[str, Any]) -> list[tuple[float, float]]:
    """When the trial trained: each attempt from its first batch to its end."""
    out = []
    for s in timeline.get("spans", []):
        if s.get("end") is None:
            continue
        begin = min(s["end"], s["start"] + float(s.get("setup_s") or 0.0))
        out.append((begin, s["end"]))
    return out


def mean_running(bars: list[tuple[float, float]], a: float, b: float) -> float:
    """Average number of bars open over [a, b]."""
    if b <= a:
        return 0.0
    covered = sum(max(0.0, min(e, b) - max(s, a)) for s, e in bars)
    return covered / (b - a)


@dataclass
class StageTimeline:
    name: str
    wall_s: float
    trials: int
    slots: int
    training_s: float  # seconds with at least one trial of the stage training
    busy_s: float  # the part of the stage in which it still had >= `threshold` trials to run
    at_once: float | None  # mean trials running during busy_s (None when busy_s is 0)
    threshold: int
    setup_s: list[float] = field(default_factory=list)  # per attempt: actor start + set-up
    checkpoint_s: float = 0.0
    probe_s: float = 0.0
    evaluation_s: float = 0.0


def stage_timeline(name: str, stage_tl: dict[str, Any], trial_tls: list[dict]) -> StageTimeline:
    spans = [tuple(s) for s in stage_tl.get("spans", []) if s[1] is not None]
    bars = [b for b in (trial_bar(t) for t in trial_tls) if b is not None]
    # A run interrupted mid-stage recorded its trials' spans but not its own: count both.
    wall = union_length(spans + bars)
    slots = int(stage_tl.get("slots") or 1)
    threshold = max(1, min(slots, len(bars)))
    # "Had >= K to run": from the first start until fewer than K trials are left unfinished,
    # i.e. the (n - K + 1)-th trial to end.
    ends = sorted(e for _, e in bars)
    busy_s, at_once = 0.0, None
    if bars:
        a, b = min(s for s, _ in bars), ends[len(bars) - threshold]
        busy_s = max(0.0, b - a)
        at_once = mean_running(bars, a, b) if busy_s > 0 else None
    attempts = [s for t in trial_tls for s in t.get("spans", [])]
    return StageTimeline(
        name=name,
        wall_s=wall,
        trials=len(bars),
        slots=slots,
        training_s=union_length([i for t in trial_tls for i in training_intervals(t)]),
        busy_s=busy_s,
        at_once=at_once,
        threshold=threshold,
        setup_s=[
            float(s.get("actor_start_s") or 0) + float(s.get("setup_s") or 0) for s in attempts
        ],
        checkpoint_s=sum(float(s.get("checkpoint_s") or 0) for s in attempts),
        probe_s=sum(float(s.get("probe_s") or 0) for s in attempts),
        evaluation_s=float(stage_tl.get("evaluation_s") or 0.0),
    )


@dataclass
class RunTimeline:
    stages: list[StageTimeline]
    wall_s: float
    training_s: float

    @property
    def training_fraction(self) -> float:
        return self.training_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def at_once(self) -> float | None:
        """Trials running at once, time-weighted over the stages' busy parts."""
        busy = [s for s in self._packable() if s.busy_s > 0]
        total = sum(s.busy_s for s in busy)
        return sum((s.at_once or 0.0) * s.busy_s for s in busy) / total if total else None

    def _packable(self) -> list[StageTimeline]:
        """Stages that could run two or more trials at once (one at a time says nothing)."""
        return [s for s in self.stages if s.at_once is not None and s.threshold >= 2]

    def line(self) -> str:
        """The run in one sentence, e.g. for the report's Timeline section."""
        text = f"trials trained {self.training_fraction:.0%} of the wall time ({self.wall_s:.0f} s)"
        busy = self._packable()
        if busy and self.at_once is not None:
            ks = sorted({s.threshold for s in busy})
            k = (
                f">= {ks[0]}"
                if len(ks) == 1
                else "as many as its slots (" + "/".join(str(x) for x in ks) + ")"
            )
            text += f"; {self.at_once:.1f} trials at once on average while a stage had {k} to run"
        return text


def run_timeline(stages: list[tuple[str, dict[str, Any], list[dict[str, Any]]]]) -> RunTimeline:
    """The run's timeline from (stage name, stage timeline, its trials' timelines)."""
    parts = [stage_timeline(n, s, t) for n, s, t in stages]
    stage_spans = [tuple(x) for _, s, _ in stages for x in s.get("spans", []) if x[1] is not None]
    bars = [b for _, _, ts in stages for t in ts if (b := trial_bar(t)) is not None]
    trials = [i for _, _, ts in stages for t in ts for i in training_intervals(t)]
    return RunTimeline(parts, union_length(stage_spans + bars), union_length(trials))
