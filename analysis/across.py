"""Comparisons across stages, for studies that train one model per stage (issue 20).

Section C trains FC, CNN and residual CNN each as its own stage, and B.3 the base U-Net and the
two encoder variants: each stage alone "compares nothing", the question is answered between
stages. This section sets the stages' best trials side by side per data set: val score with its
95% interval, test score, train-test gap, seconds per epoch, inference time, parameters; one
figure puts them on shared axes; and the sentences answer C.1 (which family), C.2 (regularized
vs not, by the train-test gap) and B.3 (frozen vs unfrozen encoder), each against the noise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from analysis import noise
from analysis.answers import Reading, pair_verdict, reading, timing_caveat
from analysis.evaluation import Evaluation, degenerate_output
from analysis.figures import colours, save, study_budget
from analysis.rundir import StageResults, StudyResults, Trial, finite
from analysis.summary import GAP_THRESHOLD, seed_groups, stage_best_trial, task_metrics

REGULARIZERS = ("dropout", "weight_decay")


def single_model_stages(study: StudyResults) -> list[StageResults]:
    """Stages that trained one configuration (its seeds pooled) and have a best trial."""
    out = []
    for stage in study.stages:
        groups = [g for g in seed_groups(stage.trials, study) if g.mean is not None]
        if len(groups) == 1 and not noise.is_reference(stage):
            out.append(stage)
    return out


def applies(study: StudyResults) -> bool:
    return len(single_model_stages(study)) >= 2


class Row:
    """One stage's best trial and what the comparison quotes of it."""

    def __init__(
        self, stage: StageResults, trial: Trial, study: StudyResults, ev: Evaluation | None
    ):
        self.stage, self.trial, self.ev = stage, trial, ev
        self.read: Reading = reading(trial, study)
        tm = task_metrics(study)
        metrics = ev.metrics if ev is not None else {}
        self.test = finite(metrics.get(f"test_{tm.score}"))
        self.infer_ms = finite(metrics.get("inference_ms_per_image"))
        last = trial.curve[-1] if trial.curve else {}
        self.train = finite(trial.final.get(tm.train_key)) or finite(last.get(tm.train_key))
        self.n = noise.val_images(trial, study, ev.val_size if ev is not None else None)

    @property
    def name(self) -> str:
        return self.stage.title or self.stage.name

    @property
    def gap(self) -> float | None:
        """Train score at the last epoch minus test score of the evaluated checkpoint."""
        return None if self.train is None or self.test is None else self.train - self.test


def rows_by_dataset(study: StudyResults, evals: dict[str, Evaluation]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for stage in single_model_stages(study):
        best = stage_best_trial(stage, study)
        if best is None:
            continue
        key = str(best.config.get("dataset", "?"))
        groups.setdefault(key, []).append(Row(stage, best, study, evals.get(stage.name)))
    return groups


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def row_text(r: Row, score: str) -> str:
    ci = noise.interval_text(r.read.best or 0.0, r.n) if r.read.best is not None else ""
    bits = [f"val {score} {_pct(r.read.best)}" + (f" ({ci})" if ci else "")]
    if r.test is not None:
        bits.append(f"test {_pct(r.test)}")
    if r.gap is not None:
        bits.append(f"train−test gap {100 * r.gap:+.1f} points")
    if r.read.sec_per_epoch is not None:
        bits.append(f"{r.read.sec_per_epoch:.2f} s/epoch")
    if r.infer_ms is not None:
        bits.append(f"{r.infer_ms:.2f} ms/image inference")
    if r.trial.params is not None:
        bits.append(f"{r.trial.params:,} parameters")
    collapsed = degenerate_output(r.ev) if r.ev is not None else None
    if collapsed:
        bits.append(f"degenerate output: {collapsed.rstrip('.')}")
    who = r.name if r.trial.name == r.name else f"{r.name} ({r.trial.name})"
    return f"{who}: " + ", ".join(bits)


def answers(study: StudyResults, evals: dict[str, Evaluation]) -> list[str]:
    """One group of sentences per data set: the ranking against noise, then C.2 and B.3."""
    score = task_metrics(study).score_title
    out = []
    for dataset, rows in rows_by_dataset(study, evals).items():
        if len(rows) < 2:
            continue
        ranked = sorted(rows, key=lambda r: r.read.best or 0.0, reverse=True)
        out += [f"{dataset}, {row_text(r, score)}." for r in ranked]
        out.append(
            pair_verdict(ranked[0].read, ranked[1].read, study, f"{dataset}, best model") + "."
        )
        fastest = min(
            (r for r in rows if r.read.sec_per_epoch),
            default=None,
            key=lambda r: r.read.sec_per_epoch or 0.0,
        )
        if fastest is not None:
            caveat = timing_caveat([r.trial for r in rows])
            out.append(f"{dataset}, time: {fastest.name} trains fastest per epoch{caveat}.")
        out += _regularized(rows, study)
        out += _encoder_schedules(rows, study)
    return out


def _regularized(rows: list[Row], study: StudyResults) -> list[str]:
    """C.2: a model with dropout / weight decay against the same model without."""
    out = []
    for reg in rows:
        on = {k: reg.trial.config.get(k) for k in REGULARIZERS if reg.trial.config.get(k)}
        if not on:
            continue
        plain = [
            r
            for r in rows
            if r is not reg
            and _same_model(r, reg)
            and not any(r.trial.config.get(k) for k in REGULARIZERS)
        ]
        for p in plain:
            what = ", ".join(f"{k}={v}" for k, v in on.items())
            if reg.gap is None or p.gap is None:
                gaps = "no test score for a train-test gap"
            else:
                gaps = (
                    f"train−test gap {100 * reg.gap:+.1f} points with {what} against "
                    f"{100 * p.gap:+.1f} without, " + _gap_reading(reg.gap, p.gap)
                )
            out.append(
                f"Regularized vs not ({reg.name} vs {p.name}): {gaps}; "
                + pair_verdict(reg.read, p.read, study, "val score")
                + "."
            )
    return out


def _gap_reading(reg: float, plain: float) -> str:
    """What the two gaps say about regularization, by the report's overfitting threshold."""
    if plain <= GAP_THRESHOLD:
        return (
            f"so the unregularized model does not overfit (gap ≤ {GAP_THRESHOLD:.2f}): at "
            "this budget there is no gap for regularization to close"
        )
    if reg < plain:
        return f"so regularization closes {100 * (plain - reg):.1f} points of the gap"
    return "so regularization does not reduce the gap here"


def _same_model(a: Row, b: Row) -> bool:
    keys = ("model", "channels", "blocks", "hidden", "width")
    return all(a.trial.config.get(k) == b.trial.config.get(k) for k in keys)


def _encoder_schedules(rows: list[Row], study: StudyResults) -> list[str]:
    """B.3: frozen encoder, encoder unfrozen later, and the base U-Net, in words."""
    sched = {str(r.trial.config.get("freeze_schedule", "none")): r for r in rows}
    if "frozen" not in sched and "unfreeze_at" not in sched:
        return []
    out = []
    frozen, later = sched.get("frozen"), sched.get("unfreeze_at")
    if frozen is not None and later is not None:
        if never_unfrozen(later.trial):
            out.append(
                f"Frozen vs unfrozen: {later.name} never unfroze its encoder (unfreeze at epoch "
                f"{later.trial.config.get('unfreeze_epoch')}, trained {later.trial.epochs_run} "
                f"epoch(s)), so it is variant A trained again and the comparison says nothing "
                "about unfreezing."
            )
        else:
            out.append(
                "Frozen vs unfrozen: "
                + pair_verdict(
                    later.read,
                    frozen.read,
                    study,
                    "unfreezing the encoder later against keeping it frozen",
                )
                + "."
            )
    base = next((r for r in rows if r.trial.config.get("model") == "unet"), None)
    for r in (frozen, later):
        if r is not None and base is not None:
            out.append(
                pair_verdict(r.read, base.read, study, f"{r.name} against the base U-Net") + "."
            )
    return out


def never_unfrozen(trial: Trial) -> bool:
    """An 'unfreeze_at' schedule whose unfreeze epoch the trial never reached."""
    c = trial.config
    if c.get("freeze_schedule") != "unfreeze_at":
        return False
    flags = [r.get("encoder_frozen") for r in trial.curve if "encoder_frozen" in r]
    if flags:
        return all(f == 1 for f in flags)
    at = c.get("unfreeze_epoch")
    return isinstance(at, int) and trial.epochs_run is not None and trial.epochs_run < at


def schedule_warning(trial: Trial) -> str | None:
    if not never_unfrozen(trial):
        return None
    return (
        f"{trial.name} was to unfreeze its encoder at epoch {trial.config.get('unfreeze_epoch')}, "
        f"but trained {trial.epochs_run} epoch(s): the encoder stayed frozen throughout, so its "
        "numbers are those of a frozen encoder, not of the schedule its title names."
    )


def shared_axes_figure(study: StudyResults, evals: dict[str, Evaluation], path: Path) -> bool:
    """Per data set a panel of the stages' val scores (95% interval bars) and test scores on a
    shared score axis, over a panel of seconds per epoch."""
    groups = {k: v for k, v in rows_by_dataset(study, evals).items() if len(v) >= 2}
    if not groups:
        return False
    score = task_metrics(study).score_title
    n = len(groups)
    fig, axes = plt.subplots(2, n, figsize=(max(5.5, 4.8 * n), 6.8), squeeze=False, sharey="row")
    for col, (dataset, rows) in enumerate(groups.items()):
        _score_panel(axes[0][col], rows, dataset, score)
        _time_panel(axes[1][col], rows)
    axes[0][0].set_ylabel(f"{score} (%)")
    axes[1][0].set_ylabel("seconds per epoch")
    fig.suptitle(f"Models of the study on shared axes ({score}: val with 95% interval, test)")
    return save(fig, path, budget=study_budget(study))


def _score_panel(ax: Any, rows: list[Row], dataset: str, score: str) -> None:
    x = np.arange(len(rows))
    for i, (r, colour) in enumerate(zip(rows, colours(len(rows)), strict=True)):
        v = r.read.best
        if v is None:
            continue
        lo, hi = noise.wilson(v, r.n) if r.n else (v, v)
        ax.errorbar(
            i - 0.1,
            100 * v,
            yerr=[[100 * (v - lo)], [100 * (hi - v)]],
            fmt="o",
            color=colour,
            capsize=4,
            label="val (95% interval)" if i == 0 else None,
        )
        if r.test is not None:
            ax.plot(
                i + 0.1,
                100 * r.test,
                "s",
                mfc="none",
                color=colour,
                label="test" if i == 0 else None,
            )
    ax.set_xticks(x, [])  # the names are under the time panel below, same order
    ax.set_ylim(0, 100)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(dataset)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def _time_panel(ax: Any, rows: list[Row]) -> None:
    x = np.arange(len(rows))
    secs = [r.read.sec_per_epoch or 0.0 for r in rows]
    ax.bar(x, secs, color=colours(len(rows)))
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_xticks(x, [_short(r.name) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.grid(alpha=0.3, axis="y")


def _short(name: str) -> str:
    return name if len(name) <= 28 else name[:27] + "…"
