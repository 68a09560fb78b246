"""Report tables: one Table type rendered as CSV (raw values) and Markdown (formatted)."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis import noise
from analysis.evaluation import Evaluation, confused_pairs
from analysis.rundir import StageResults, StudyResults, Trial
from analysis.summary import (
    METRIC_TITLES,
    STABILITY_EPOCHS,
    budget_text,
    last_epochs_std,
    seed_groups,
    stage_best_trial,
    stop_reason,
    task_metrics,
    trial_stats,
)
from trainables.contract import best_of

BEST_MARK = "★ best"


def fmt_value(v: Any) -> str:
    """A cell value as short text: floats to 3 decimals, missing as an em dash."""
    if v is None or v == "":
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.2e}"
        return f"{v:.3f}"
    if isinstance(v, list | tuple | dict):
        return json.dumps(v, separators=(",", ":"), default=str)
    return str(v)


def fmt_params(v: Any) -> str:
    return "—" if v is None else f"{v / 1e6:.2f}"


def fmt_seconds(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    s = float(v)
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_signed(v: Any) -> str:
    return "—" if v is None else f"{v:+.3f}"


def fmt_pct(v: Any) -> str:
    """A fraction in [0, 1] as a percentage with one decimal (the course's summary)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * float(v):.1f}%"


def fmt_pct_signed(v: Any) -> str:
    """A difference of fractions in percentage points."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * float(v):+.1f} pt"


def fmt_pt(v: Any) -> str:
    """A spread of fractions in percentage points (std over epochs or seeds)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{100 * float(v):.2f} pt"


@dataclass
class Column:
    key: str  # CSV header
    title: str  # Markdown / HTML header
    fmt: Callable[[Any], str] = fmt_value


@dataclass
class Table:
    """Rows of raw values; bold_rows are emphasised in Markdown/HTML (e.g. a stage's best)."""

    name: str  # file stem under tables/
    columns: list[Column]
    rows: list[list[Any]]
    bold_rows: set[int] = field(default_factory=set)

    def cells(self) -> list[list[str]]:
        """Formatted cell text, row by row."""
        return [[c.fmt(v) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow([c.key for c in self.columns])
            for row in self.rows:
                w.writerow([_csv_value(v) for v in row])

    def to_markdown(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")

        lines = [
            "| " + " | ".join(esc(c.title) for c in self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        for i, row in enumerate(self.cells()):
            cells = [esc(c) for c in row]
            if i in self.bold_rows:
                cells = [f"**{c}**" if c and c != "—" else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, list | tuple | dict):
        return json.dumps(v, separators=(",", ":"), default=str)
    return v


def natural_key(s: str) -> list[Any]:
    """Sort "3.2-B" after "3.2-A" and "10" after "9"."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", s)]


def fmt_config(config: dict[str, Any], keys: Sequence[str]) -> str:
    """`k=v, ...` for the given keys that the config has."""
    return ", ".join(f"{k}={fmt_value(config[k])}" for k in keys if k in config)


# Config keys that differ between trials without being a design choice: the orchestrator puts
# the trial's label into its config (orchestrator/plan.py), max_batches only shortens smoke runs.
NOT_A_SETTING = ("label", "max_batches")


def varying_keys(trials: Sequence[Trial]) -> list[str]:
    """Config keys whose value differs between trials (in first-seen order).

    Infeasible points never ran, so their record holds only the study's own keys, not the
    defaults a trained trial's effective config carries: against trained trials, every defaulted
    key would look varied. They count only when no trial trained.
    """
    trained = [t for t in trials if t.status != "infeasible"]
    trials = trained or list(trials)
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.config if k not in keys and k not in NOT_A_SETTING]
    return [
        k
        for k in keys
        if len({json.dumps(t.config.get(k), sort_keys=True, default=str) for t in trials}) > 1
    ]


def study_compare_keys(study: StudyResults) -> list[str]:
    """Union of every stage's `compare` keys: the architecture dimensions the study explores."""
    keys: list[str] = []
    for s in study.stages:
        keys += [k for k in s.compare if k not in keys]
    return keys


def shown_keys(stage: StageResults, study: StudyResults) -> list[str]:
    return stage.compare or study_compare_keys(study)


def _timing_columns(study: StudyResults) -> list[Column]:
    stats = [trial_stats(t, study) for t in study.all_trials()]
    cols = []
    if any(s.train_time_s is not None for s in stats):
        cols.append(Column("train_time_s", "train time", fmt_seconds))
    return cols


def all_trials_table(study: StudyResults) -> Table:
    """Every trial of every stage, infeasible ones included."""
    timing = _timing_columns(study)
    rows: list[list[Any]] = []
    bold: set[int] = set()
    for stage in study.stages:
        best = stage_best_trial(stage, study)
        keys = shown_keys(stage, study)
        feasible = [t for t in stage.trials if t.status != "infeasible"]
        other = [k for k in varying_keys(feasible or stage.trials) if k not in keys]
        for t in stage.trials:
            if t is best:
                bold.add(len(rows))
            rows.append(_all_trials_row(t, stage, study, keys, other, timing))
    return Table("all_trials", _all_trials_columns(study, timing), rows, bold)


def _all_trials_columns(study: StudyResults, timing: list[Column]) -> list[Column]:
    tm = task_metrics(study)
    return [
        Column("stage", "stage"),
        Column("trial", "trial"),
        Column("configuration", "configuration"),
        Column("other", "other varying"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(f"{tm.train_key}_final", f"{METRIC_TITLES[tm.train_key]} (final)"),
        Column(f"{tm.val_key}_best", f"{METRIC_TITLES[tm.val_key]} (best)"),
        Column(f"{tm.val_key}_final", f"{METRIC_TITLES[tm.val_key]} (final)"),
        *[Column(f"{k}_at_best", f"{METRIC_TITLES.get(k, k)} (best ep.)") for k in tm.extras],
        Column("best_epoch", "best epoch"),
        Column("epochs_run", "epochs run"),
        Column("gap", "train−val gap", fmt_signed),
        Column("overfitting", "overfitting?"),
        *timing,
        Column("stop_reason", "stop reason"),
        Column("budget", "budget"),
        Column("wall_time_s", "wall time", fmt_seconds),
        Column("notes", "notes"),
        Column("trial_id", "trial id"),
        Column("status", "status"),
        Column("config_json", "full config"),
    ]


def _all_trials_row(
    t: Trial,
    stage: StageResults,
    study: StudyResults,
    keys: list[str],
    other: list[str],
    timing: list[Column],
) -> list[Any]:
    """One row, in the order of _all_trials_columns."""
    st = trial_stats(t, study)
    times = {"train_time_s": st.train_time_s}
    return [
        stage.title,
        t.name,
        fmt_config(t.config, keys),
        fmt_config(t.config, other),
        None if t.params is None else t.params / 1e6,
        st.train_final,
        st.val_best,
        st.val_final,
        *st.extras.values(),
        st.best_epoch,
        None if t.status == "infeasible" else t.epochs_run,
        st.gap,
        st.verdict,
        *[times[c.key] for c in timing],
        stop_reason(t, stage),
        budget_text(t.config, study, stage.epochs),
        t.wall_time_s,
        "; ".join(t.notes) or None,
        t.trial_id,
        t.status,
        t.config,
    ]


def markdown_view(table: Table, drop: Sequence[str]) -> Table:
    """The same table without some columns (the Markdown/HTML page omits CSV-only ones)."""
    keep = [i for i, c in enumerate(table.columns) if c.key not in drop]
    return Table(
        table.name,
        [table.columns[i] for i in keep],
        [[row[i] for i in keep] for row in table.rows],
        set(table.bold_rows),
    )


def summary_rows(study: StudyResults) -> tuple[list[Trial], bool]:
    """Labelled trials ordered by stage then label; without labels, each stage's best trial."""
    labelled = [
        t
        for s in study.stages
        for t in sorted((t for t in s.trials if t.label), key=lambda t: natural_key(t.name))
    ]
    if labelled:
        return labelled, True
    bests = [stage_best_trial(s, study) for s in study.stages]
    return [t for t in bests if t is not None], False


# Settings a reader wants to see once even when no stage compares them.
COMMON_SETTINGS = ("optimizer", "lr", "batch_size", "weight_decay", "scheduler", "augment", "loss")


def _summary_keys(study: StudyResults, trials: list[Trial]) -> tuple[list[str], list[str]]:
    """(keys that differ between the summary's rows, keys equal in every row)."""
    keys = study_compare_keys(study)
    keys += [k for k in varying_keys(trials) if k not in keys]
    varying = set(varying_keys(trials))
    shown = [k for k in keys if k in varying]
    same = [k for k in [*keys, *COMMON_SETTINGS] if k not in varying]
    same = [k for k in dict.fromkeys(same) if trials and all(k in t.config for t in trials)]
    return shown, same


def summary_constants(study: StudyResults) -> str:
    """The settings every summary row shares, as "k=v, ..." (shown once above the table)."""
    trials, _ = summary_rows(study)
    _, same = _summary_keys(study, trials)
    return fmt_config(trials[0].config, same) if trials else ""


def _score_fmt(study: StudyResults) -> Callable[[Any], str]:
    """Accuracies as % (the course's summary); IoU stays a fraction, as segmentation papers do."""
    return fmt_pct if task_metrics(study).score == "acc" else fmt_value


def summary_table(study: StudyResults) -> Table:
    """The course's summary: stage, configuration, params, val/train score, gap, overfitting."""
    tm = task_metrics(study)
    trials, _ = summary_rows(study)
    # What differs between rows (the compared dimensions, the final stage's longer training, a
    # U-Net vs. backbone model name); settings equal in every row go above the table instead.
    keys, _ = _summary_keys(study, trials)
    pct = _score_fmt(study)
    unit = " %" if pct is fmt_pct else ""
    columns = [
        Column("stage", "stage"),
        Column("label", "label"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(f"{tm.val_key}_best", f"{METRIC_TITLES[tm.val_key]}{unit} (best)", pct),
        Column(f"{tm.val_key}_final", f"{METRIC_TITLES[tm.val_key]}{unit} (final)", pct),
        Column(f"{tm.train_key}_final", f"{METRIC_TITLES[tm.train_key]}{unit} (final)", pct),
        Column("gap", "train−val gap (final)", fmt_pct_signed if unit else fmt_signed),
        Column("overfitting", "overfitting?"),
        Column("best_epoch", "best epoch"),
        Column("budget", "budget"),
        Column("status", "status"),
        Column("best_in_stage", "best of stage", lambda v: BEST_MARK if v else ""),
        Column("winner", "won how"),
    ]
    stage_of = {s.name: s for s in study.stages}
    best_ids = _summary_best(study, trials)
    rows: list[list[Any]] = []
    bold: set[int] = set()
    for t in trials:
        stage = stage_of[t.stage]
        st = trial_stats(t, study)
        is_best = id(t) in best_ids
        if is_best:
            bold.add(len(rows))
        rows.append(
            [
                stage.title,
                t.name,
                fmt_config(t.config, keys),
                None if t.params is None else t.params / 1e6,
                st.val_best,
                st.val_final,
                st.train_final,
                st.gap,
                st.verdict,
                st.best_epoch,
                budget_text(t.config, study, stage.epochs),
                t.status if not t.reason else f"{t.status}: {t.reason}",
                is_best,
                noise.winner_kind(stage, study) if is_best else "",
            ]
        )
    return Table("summary", columns, rows, bold)


def stage_table(stage: StageResults, study: StudyResults) -> Table:
    """One stage's trials: score, convergence, overfitting and stability (E.2), with budget.

    'stability' is the std of the val score over the last STABILITY_EPOCHS epochs of each trial;
    'seed spread' the std of the best val score over the trials that ran the same configuration
    with different seeds (empty when the stage ran each configuration once).
    """
    tm = task_metrics(study)
    pct = _score_fmt(study)
    spread = fmt_pt if pct is fmt_pct else fmt_value
    keys = shown_keys(stage, study)
    feasible = [t for t in stage.trials if t.status != "infeasible"]
    keys = keys + [k for k in varying_keys(feasible) if k not in keys]
    group_of = {id(t): g for g in seed_groups(stage.trials, study) for t in g.trials}
    best = None if noise.is_reference(stage) else stage_best_trial(stage, study)
    columns = [
        Column("trial", "trial"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(f"{tm.val_key}_best", f"{METRIC_TITLES[tm.val_key]} (best)", pct),
        Column(f"{tm.val_key}_final", f"{METRIC_TITLES[tm.val_key]} (final)", pct),
        Column(f"{tm.val_key}_ci95", "95% interval of the best (n val images)"),
        Column("best_epoch", "best epoch"),
        Column("epochs_run", "epochs run"),
        Column("overfitting", "overfitting?"),
        Column(
            f"{tm.val_key}_std_last{STABILITY_EPOCHS}",
            f"stability: std of {METRIC_TITLES[tm.val_key]} over last {STABILITY_EPOCHS} epochs",
            spread,
        ),
        Column("seed_std", "seed spread: std of best over seeds", spread),
        Column("seeds", "seeds"),
        Column("budget", "budget"),
        Column("stop_reason", "stop reason"),
    ]
    rows: list[list[Any]] = []
    bold: set[int] = set()
    for t in stage.trials:
        if t is best:
            bold.add(len(rows))
        st = trial_stats(t, study)
        g = group_of.get(id(t))
        rows.append(
            [
                t.name,
                fmt_config(t.config, keys),
                None if t.params is None else t.params / 1e6,
                st.val_best,
                st.val_final,
                _interval(st.val_best, noise.val_images(t, study)),
                st.best_epoch,
                None if t.status == "infeasible" else t.epochs_run,
                st.verdict,
                last_epochs_std(t, tm.val_key),
                g.std if g else None,
                len(g.values) if g and g.repeated else None,
                budget_text(t.config, study, stage.epochs),
                stop_reason(t, stage),
            ]
        )
    return Table(f"stage_{stage.name}", columns, rows, bold)


def _interval(value: float | None, n: int | None) -> str | None:
    """'9.9-28.2 (n = 64)': the 95% Wilson interval in points (analysis/noise.py)."""
    if value is None or not n:
        return None
    lo, hi = noise.wilson(value, n)
    return f"{100 * lo:.1f}-{100 * hi:.1f} (n = {n})"


def _summary_best(study: StudyResults, trials: list[Trial]) -> set[int]:
    """ids of the trial marked best in each stage (the stage's best, else the best listed row)."""
    marked: set[int] = set()
    for stage in study.stages:
        rows = [t for t in trials if t.stage == stage.name and t.status != "infeasible"]
        if not rows or noise.is_reference(stage):  # a reference is never "best"
            continue
        best = stage_best_trial(stage, study)
        if best is None or all(t is not best for t in rows):
            best = best_of(rows, lambda t: trial_stats(t, study).best_value, study.mode)
        if best is not None:
            marked.add(id(best))
    return marked


def best_per_stage_table(study: StudyResults) -> Table:
    columns = [
        Column("stage", "stage"),
        Column("trial", "best trial"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(
            study.metric,
            f"{METRIC_TITLES.get(study.metric, study.metric)} ({study.mode})",
            fmt_pct if study.metric == "val_acc" else fmt_value,
        ),
        Column("best_epoch", "best epoch"),
        Column("budget", "budget"),
        Column("checkpoint", "checkpoint"),
    ]
    rows: list[list[Any]] = []
    for stage in study.stages:
        t = stage_best_trial(stage, study)
        if t is None:
            rows.append([stage.title, None, None, None, None, None, None, None])
            continue
        st = trial_stats(t, study)
        value = st.best_value
        if stage.best and isinstance(stage.best.value, int | float):
            value = float(stage.best.value)
        ckpt = (stage.best.checkpoint if stage.best else None) or t.best_checkpoint
        rows.append(
            [
                stage.title,
                t.name,
                fmt_config(t.config, shown_keys(stage, study)),
                None if t.params is None else t.params / 1e6,
                value,
                st.best_epoch,
                budget_text(t.config, study, stage.epochs),
                ckpt,
            ]
        )
    return Table("best_per_stage", columns, rows)


def infeasible_table(study: StudyResults) -> Table:
    columns = [
        Column("stage", "stage"),
        Column("trial", "trial"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column("reason", "reason"),
    ]
    rows = [
        [
            s.title,
            t.name,
            fmt_config(t.config, shown_keys(s, study)),
            None if t.params is None else t.params / 1e6,
            t.reason,
        ]
        for s in study.stages
        for t in s.trials
        if t.status == "infeasible"
    ]
    return Table("infeasible", columns, rows)


def test_metrics_table(
    evals: Sequence[Evaluation],
    name: str = "test_metrics",
    study: StudyResults | None = None,
) -> Table:
    """One row per evaluation: compares e.g. the base U-Net with the backbone U-Net.

    With the study, each row names the stage by its title and states the budget the evaluated
    trial was trained with (a smoke run's test accuracy must not pass for a course result).
    """
    keys: list[str] = []
    for ev in evals:
        keys += [k for k in ev.metrics if k not in keys]
    # With the study: the evaluated trial's training time and final train score beside the test
    # numbers (course C.1: training vs inference time; C.2: the train-test gap).
    train_key = task_metrics(study).train_key if study else ""  # used only with a study
    columns = [
        Column("stage", "evaluated stage"),
        *([Column("title", "stage title")] if study else []),
        Column("params", "params (M)", fmt_params),
        *[Column(k, k.replace("_", " ")) for k in keys],
        *(
            [
                Column("wall_time_s", "trial wall time", fmt_seconds),
                Column(f"{train_key}_final", f"{METRIC_TITLES[train_key]} (final)"),
                Column("budget", "budget"),
            ]
            if study
            else []
        ),
    ]
    rows = []
    for ev in evals:
        row: list[Any] = [ev.stage, ev.params, *[ev.metrics.get(k) for k in keys]]
        if study is not None:
            trial = evaluated_trial(study, ev)
            row.insert(1, stage_title(study, ev.stage))
            row += [
                trial.wall_time_s if trial else None,
                trial.final.get(train_key) if trial else None,
                budget_text(trial.config, study, stage_epochs(study, ev.stage)) if trial else None,
            ]
        rows.append(row)
    return Table(name, columns, rows)


def evaluated_trial(study: StudyResults, ev: Evaluation) -> Trial | None:
    """The trial an evaluation tested (by trial id, else its stage's best)."""
    for stage in study.stages:
        if stage.name == ev.stage:
            trial = next(
                (t for t in stage.trials if ev.trial_id and t.trial_id == ev.trial_id), None
            )
            return trial or stage_best_trial(stage, study)
    return None


def stage_epochs(study: StudyResults, name: str) -> int | None:
    return next((s.epochs for s in study.stages if s.name == name), None)


def stage_title(study: StudyResults, name: str) -> str:
    """A stage's title (what the reader knows it by), its name when it has none or is unknown."""
    return next((s.title or s.name for s in study.stages if s.name == name), name)


def evaluation_budget(study: StudyResults, ev: Evaluation) -> str | None:
    """The budget of the trial an evaluation tested (by trial id, else the stage's best)."""
    trial = evaluated_trial(study, ev)
    return budget_text(trial.config, study, stage_epochs(study, ev.stage)) if trial else None


def per_class_table(ev: Evaluation) -> Table:
    """Per-class precision/recall/F1/support plus macro and support-weighted averages."""
    columns = [
        Column("class", "class"),
        Column("precision", "precision"),
        Column("recall", "recall"),
        Column("f1", "F1"),
        Column("support", "support"),
    ]
    rows = [
        [p.get("class"), p.get("precision"), p.get("recall"), p.get("f1"), p.get("support")]
        for p in ev.per_class
    ]
    bold = set()
    if rows:
        n = len(rows)
        total = sum(int(r[4] or 0) for r in rows)
        macro = [sum(float(r[i] or 0) for r in rows) / n for i in (1, 2, 3)]
        rows.append(["macro avg", *macro, total])
        if total:
            weighted = [
                sum(float(r[i] or 0) * int(r[4] or 0) for r in rows[:n]) / total for i in (1, 2, 3)
            ]
            rows.append(["weighted avg", *weighted, total])
        bold = set(range(n, len(rows)))
    return Table(f"per_class_{ev.stage}", columns, rows, bold)


def confused_table(ev: Evaluation, top: int = 10) -> Table:
    columns = [
        Column("true", "true class"),
        Column("pred", "predicted as"),
        Column("count", "count"),
    ]
    total = {}
    if ev.confusion_matrix is not None and ev.class_names:
        total = dict(zip(ev.class_names, ev.confusion_matrix.sum(axis=1).tolist(), strict=False))
    rows: list[list[Any]] = [[t, p, c] for t, p, c in confused_pairs(ev, top)]
    if total:
        columns.append(Column("share_of_true", "share of true class", fmt_value))
        for r in rows:
            n = total.get(r[0])
            r.append(r[2] / n if n else None)
    return Table(f"most_confused_{ev.stage}", columns, rows)


# --- course B.1 / E.1: val beside test, the architecture by part, the custom-layer checks -------

VAL_TEST_COLUMNS = {
    "classification": (
        ("acc", "accuracy", fmt_pct),
        ("macro_f1", "macro F1", fmt_value),
        ("loss", "loss", fmt_value),
    ),
    "segmentation": (
        ("iou", "IoU", fmt_value),
        ("dice", "Dice", fmt_value),
        ("pixel_acc", "pixel acc", fmt_pct),
        ("loss", "loss", fmt_value),
    ),
}


def val_test_table(ev: Evaluation, study: StudyResults) -> Table:
    """The evaluated checkpoint on the whole val split and on the test split, and the val
    numbers its trial reported at its best epoch (a capped run validates on fewer batches)."""
    metrics = VAL_TEST_COLUMNS["segmentation" if ev.task == "segmentation" else "classification"]
    columns = [
        Column("split", "split"),
        Column("images", "images"),
        *[Column(key, title, fmt) for key, title, fmt in metrics],
        Column("budget", "budget"),
    ]
    budget = evaluation_budget(study, ev)
    rows = []
    if ev.val_metrics:
        rows.append(
            [
                "val, whole split (best checkpoint)",
                ev.val_size,
                *[ev.val_metrics.get(f"val_{k}") for k, _, _ in metrics],
                budget,
            ]
        )
    trial = _evaluated_trial(study, ev)
    if trial is not None and trial.best:
        epoch = trial.best_epoch or trial.best.get("epoch")
        label = f"val, as trial {trial.name} reported it" + (f" (epoch {epoch})" if epoch else "")
        rows.append([label, None, *[trial.best.get(f"val_{k}") for k, _, _ in metrics], budget])
    if ev.metrics:
        rows.append(
            ["test", ev.test_size, *[ev.metrics.get(f"test_{k}") for k, _, _ in metrics], budget]
        )
    return Table(f"val_test_{ev.stage}", columns, rows)


def _evaluated_trial(study: StudyResults, ev: Evaluation) -> Trial | None:
    for stage in study.stages:
        if stage.name == ev.stage:
            return next(
                (t for t in stage.trials if ev.trial_id and t.trial_id == ev.trial_id), None
            )
    return None


def fmt_shape(v: Any) -> str:
    """[C, H, W] as "C × H × W" (channels × height × width); [N] as "N values"."""
    if not isinstance(v, list | tuple) or not v:
        return "—"
    if len(v) == 1:
        return f"{v[0]} values"
    return " × ".join(str(x) for x in v)


def fmt_int(v: Any) -> str:
    return "—" if v is None else f"{int(v):,}"


def downsample_text(d: dict[str, Any]) -> str:
    """ "stem.conv (Conv2d 7x7/2): 128→64"."""
    size = f"{d.get('from', ['?'])[-1]}→{d.get('to', ['?'])[-1]}"
    kind = f" ({d['kind']})" if d.get("kind") else ""
    return f"{d.get('layer')}{kind}: {size}"


def architecture_table(ev: Evaluation) -> Table:
    """One row per part of the evaluated model: blocks, output size, stride, downsampling."""
    columns = [
        Column("part", "part"),
        Column("type", "type"),
        Column("blocks", "blocks"),
        Column("channels", "channels"),
        Column("output", "output (C × H × W)", fmt_shape),
        Column("total_stride", "stride vs input"),
        Column("downsamples_at", "downsamples at (layer: side in→out)"),
        Column("params", "parameters", fmt_int),
    ]
    rows = []
    for r in ev.architecture:
        out = r.get("out_shape") or []
        blocks = r.get("blocks")
        rows.append(
            [
                r.get("part"),
                r.get("kind") or "",
                f"{blocks} × {r['block']}" if blocks and r.get("block") else None,
                out[0] if len(out) == 3 else None,
                out,
                r.get("total_stride"),
                "; ".join(downsample_text(d) for d in r.get("downsamples_at") or []) or None,
                r.get("params"),
            ]
        )
    return Table(f"architecture_{ev.stage}", columns, rows)


def layer_checks_table(rows: list[dict[str, Any]], stage: StageResults) -> Table:
    """One row per (trial, custom layer, check): the measured value and pass/fail."""
    columns = [
        Column("trial", "trial"),
        Column("layer", "layer"),
        Column("instances", "instances checked"),
        Column("check", "check"),
        Column("measured", "measured (worst instance)"),
        Column("result", "result"),
    ]

    def instances(names: list[str]) -> str:
        return f"{len(names)} ({', '.join(names[:2])}{', …' if len(names) > 2 else ''})"

    body = [
        [
            r["trial"],
            r["layer"],
            instances(list(r["instances"])),
            r["check"],
            r["measured"],
            "pass" if r["passed"] else "FAIL",
        ]
        for r in rows
    ]
    failed = {i for i, r in enumerate(rows) if not r["passed"]}
    return Table(f"layer_checks_{stage.name}", columns, body, bold_rows=failed)
