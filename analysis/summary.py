"""Numbers derived from a trial: best/final metrics, convergence, overfitting verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from analysis.rundir import StageResults, StudyResults, Trial, finite
from trainables.contract import best_of

# Overfitting verdict (documented in the report): "yes" when the final train-val gap of the score
# (accuracy or IoU) exceeds GAP_THRESHOLD *and* val loss is rising at the end (its minimum lies
# before the last RISING_EPOCHS epochs and the final val loss is RISING_RATIO above that minimum);
# "gap only" / "val loss rising" when just one holds; "no" otherwise.
GAP_THRESHOLD = 0.10
RISING_EPOCHS = 3
RISING_RATIO = 1.05


@dataclass(frozen=True)
class TaskMetrics:
    """Which per-epoch metric names a task's tables and figures use."""

    score: str  # short name: "acc" or "iou"
    score_title: str
    extras: tuple[str, ...]  # further val metrics shown at the best epoch

    @property
    def train_key(self) -> str:
        return f"train_{self.score}"

    @property
    def val_key(self) -> str:
        return f"val_{self.score}"


CLASSIFICATION = TaskMetrics("acc", "accuracy", ())
SEGMENTATION = TaskMetrics("iou", "IoU", ("val_dice", "val_pixel_acc"))

METRIC_TITLES = {
    "val_acc": "val acc",
    "train_acc": "train acc",
    "val_iou": "val IoU",
    "train_iou": "train IoU",
    "val_dice": "val Dice",
    "val_pixel_acc": "val pixel acc",
    "val_loss": "val loss",
    "train_loss": "train loss",
}


def task_metrics(study: StudyResults) -> TaskMetrics:
    return SEGMENTATION if study.trainable == "segmentation" else CLASSIFICATION


@dataclass
class TrialStats:
    """What the tables show for one trial; None where the run did not record it."""

    best_value: float | None  # the study's metric at its best epoch
    best_epoch: int | None
    val_best: float | None
    val_final: float | None
    train_final: float | None
    train_at_best: float | None
    gap: float | None  # train - val score at the final epoch
    extras: dict[str, float | None]
    val_loss_rising: bool | None
    verdict: str
    train_time_s: float | None


def best_row(curve: list[dict[str, float]], metric: str, mode: str) -> dict[str, float] | None:
    """The epoch row with the best finite value of metric."""
    return best_of(curve, lambda row: row.get(metric), mode)


def _row_at(curve: list[dict[str, float]], epoch: int | None) -> dict[str, float] | None:
    if epoch is None:
        return None
    return next((r for r in curve if r.get("epoch") == epoch), None)


def trial_stats(trial: Trial, study: StudyResults) -> TrialStats:
    """Best/final values from study.json where recorded, else from the per-epoch curve."""
    tm = task_metrics(study)
    curve = trial.curve
    last = curve[-1] if curve else {}
    b_row = best_row(curve, study.metric, study.mode)
    best_epoch = trial.best_epoch
    if best_epoch is None and b_row is not None:
        best_epoch = int(b_row["epoch"])
    at_best = _row_at(curve, best_epoch) or b_row or {}

    def pick(src: dict[str, Any], fallback: dict[str, Any], key: str) -> float | None:
        v = finite(src.get(key))
        return v if v is not None else finite(fallback.get(key))

    v_best_row = best_row(curve, tm.val_key, "max") or {}
    val_best = pick(trial.best, at_best, tm.val_key)
    if val_best is None:
        val_best = finite(v_best_row.get(tm.val_key))
    val_final = pick(trial.final, last, tm.val_key)
    train_final = pick(trial.final, last, tm.train_key)
    gap = None if val_final is None or train_final is None else train_final - val_final
    rising = val_loss_rising(curve)
    if trial.status in ("diverged", "error", "infeasible"):
        # The last epoch of a diverged/crashed run says nothing about generalisation.
        gap, rising = None, None
    return TrialStats(
        best_value=pick(trial.best, at_best, study.metric),
        best_epoch=best_epoch,
        val_best=val_best,
        val_final=val_final,
        train_final=train_final,
        train_at_best=pick(trial.best, at_best, tm.train_key),
        gap=gap,
        extras={k: pick(trial.best, at_best, k) for k in tm.extras},
        val_loss_rising=rising,
        verdict=overfitting_verdict(gap, rising),
        train_time_s=_timing(trial, "train_time_s"),
    )


def _timing(trial: Trial, key: str) -> float | None:
    for src in (trial.final, trial.curve[-1] if trial.curve else {}, trial.best):
        v = finite(src.get(key))
        if v is not None:
            return v
    return None


def val_loss_rising(curve: list[dict[str, float]]) -> bool | None:
    """True when val loss bottomed out before the last epochs and ended clearly above it."""
    losses = [(r["epoch"], v) for r in curve if (v := finite(r.get("val_loss"))) is not None]
    if len(losses) < RISING_EPOCHS + 1:
        return None
    min_idx = min(range(len(losses)), key=lambda i: losses[i][1])
    lo, end = losses[min_idx][1], losses[-1][1]
    return min_idx < len(losses) - RISING_EPOCHS and end > lo * RISING_RATIO


def overfitting_verdict(gap: float | None, rising: bool | None) -> str:
    if gap is None and rising is None:
        return "n/a"
    big_gap = gap is not None and gap > GAP_THRESHOLD
    if big_gap and rising:
        return "yes"
    if big_gap:
        return "gap only"
    if rising:
        return "val loss rising"
    return "no"


def stage_best_trial(stage: StageResults, study: StudyResults) -> Trial | None:
    """The stage's best trial: study.json's record, else the best metric among its trials."""
    if stage.best and stage.best.trial_id:
        for t in stage.trials:
            if t.trial_id == stage.best.trial_id:
                return t
    candidates = [t for t in stage.trials if t.status != "infeasible"]
    return best_of(candidates, lambda t: trial_stats(t, study).best_value, study.mode)


def stop_reason(trial: Trial, stage: StageResults) -> str:
    """Status plus what a reader needs to know about it."""
    if trial.status == "asha_stopped":
        total = trial.config.get("epochs", stage.epochs)
        of = f" of {total}" if total else ""
        return f"asha_stopped (after epoch {trial.epochs_run}{of})"
    if trial.reason:
        return f"{trial.status}: {trial.reason}"
    return trial.status


# --- budget: what a number was trained with (issue 14) ----------------------------------------

# Keys that identify one run of a configuration rather than the configuration itself: two trials
# that differ only in these are the same configuration run with another seed.
RUN_KEYS = ("seed", "label")


def classes_text(config: dict[str, Any], study: StudyResults) -> str | None:
    """The class selection of a config as the reader needs it ("10 classes", "all 200 classes")."""
    if study.trainable == "segmentation":
        return "binary masks"
    classes = config.get("classes")
    if isinstance(classes, bool):
        return None
    if isinstance(classes, int):
        return f"{classes} class" if classes == 1 else f"{classes} classes"
    if isinstance(classes, list | tuple):
        return f"{len(classes)} chosen classes"
    if isinstance(classes, dict) and isinstance(classes.get("n"), int):
        return f"{classes['n']} classes (seed {classes.get('seed')})"
    n = len(_data_of(config, study).get("class_names") or [])
    return f"all {n} classes" if n else "all classes"


def _data_of(config: dict[str, Any], study: StudyResults) -> dict[str, Any]:
    """study.json's data block for this config's data set ({} when none was recorded); a
    config without "dataset" uses the study's."""
    return study.data_of(config.get("dataset", study.data.get("dataset")))


def budget_parts(
    config: dict[str, Any], study: StudyResults, epochs: int | None = None
) -> list[str]:
    """[epochs, image size, classes, data share] of one trial config; only what is known."""
    parts = []
    ep = config.get("epochs", epochs)
    if isinstance(ep, int):
        parts.append(f"{ep} ep")
    size = config.get("image_size")
    if size is None:
        size = _data_of(config, study).get("image_size")
    if isinstance(size, int):
        parts.append(f"{size}px")
    cls = classes_text(config, study)
    if cls:
        parts.append(cls)
    parts.append(data_share_text(config, study))
    return parts


def data_share_text(config: dict[str, Any], study: StudyResults) -> str:
    """ "all train data", or the cap max_batches puts on each epoch (a smoke run's 2 batches)."""
    mb = config.get("max_batches")
    if not isinstance(mb, int) or isinstance(mb, bool):
        return "full train set"
    text = f"{mb} batch{'es' if mb != 1 else ''}/ep"
    bs, train = config.get("batch_size"), _data_of(config, study).get("train")
    if isinstance(bs, int) and isinstance(train, int) and train > 0:
        share = min(1.0, mb * bs / train)
        text += f" ({share:.1%} of train)"
    return text


def budget_text(config: dict[str, Any], study: StudyResults, epochs: int | None = None) -> str:
    """One line: "1 ep, 64px, 10 classes, 2 batches/ep (1.4% of train)"."""
    return ", ".join(budget_parts(config, study, epochs))


def is_smoke(study: StudyResults) -> bool:
    return bool(study.record.run_settings.get("smoke"))


def run_budget(study: StudyResults) -> str:
    """How the run was sized: a smoke run, a named --budget, or the study file's own budget."""
    rs = study.record.run_settings
    if rs.get("smoke"):
        return "smoke run (--smoke)"
    if rs.get("budget"):
        return f"--budget {rs['budget']}"
    return "the study's own budget"


# --- stability and seeds (issue 12 E.2) --------------------------------------------------------

STABILITY_EPOCHS = 3


def last_epochs_std(trial: Trial, key: str, n: int = STABILITY_EPOCHS) -> float | None:
    """Population std of `key` over the trial's last n epochs; None with fewer than n epochs."""
    vals = [v for r in trial.curve[-n:] if (v := finite(r.get(key))) is not None]
    if len(trial.curve) < n or len(vals) < n:
        return None
    mean = sum(vals) / n
    return (sum((v - mean) ** 2 for v in vals) / n) ** 0.5


def config_key(config: dict[str, Any]) -> str:
    """The configuration without its seed and label, as a comparable string."""
    return json.dumps(
        {k: v for k, v in config.items() if k not in RUN_KEYS}, sort_keys=True, default=str
    )


def sample_std(values: list[float]) -> float | None:
    """Sample standard deviation (n-1), None below two values."""
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


@dataclass
class SeedGroup:
    """Trials of one configuration that differ only by seed."""

    key: str
    trials: list[Trial]
    values: list[float]  # best val score of each trial that has one

    @property
    def seeds(self) -> list[Any]:
        return [t.config.get("seed") for t in self.trials]

    @property
    def repeated(self) -> bool:
        return len(set(map(str, self.seeds))) > 1 and len(self.values) > 1

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return sample_std(self.values) if self.repeated else None


def seed_groups(trials: list[Trial], study: StudyResults) -> list[SeedGroup]:
    """Group ranked trials by configuration minus seed, in first-seen order."""
    groups: dict[str, SeedGroup] = {}
    for t in trials:
        if t.status in ("infeasible", "error"):
            continue
        g = groups.setdefault(config_key(t.config), SeedGroup(config_key(t.config), [], []))
        g.trials.append(t)
        v = trial_stats(t, study).val_best
        if v is not None:
            g.values.append(v)
    return list(groups.values())


def seed_noise(groups: list[SeedGroup]) -> float | None:
    """Pooled seed-to-seed std of the best val score over every repeated configuration."""
    num = den = 0.0
    for g in groups:
        if g.std is not None:
            num += g.std**2 * (len(g.values) - 1)
            den += len(g.values) - 1
    return (num / den) ** 0.5 if den else None
