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

from analysis.evaluation import Evaluation, confused_pairs
from analysis.rundir import Stage, Study, Trial
from analysis.summary import (
    METRIC_TITLES,
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
    """Config keys whose value differs between trials (in first-seen order)."""
    keys: list[str] = []
    for t in trials:
        keys += [k for k in t.config if k not in keys and k not in NOT_A_SETTING]
    return [
        k
        for k in keys
        if len({json.dumps(t.config.get(k), sort_keys=True, default=str) for t in trials}) > 1
    ]


def study_compare_keys(study: Study) -> list[str]:
    """Union of every stage's `compare` keys: the architecture dimensions the study explores."""
    keys: list[str] = []
    for s in study.stages:
        keys += [k for k in s.compare if k not in keys]
    return keys


def shown_keys(stage: Stage, study: Study) -> list[str]:
    return stage.compare or study_compare_keys(study)


def _timing_columns(study: Study) -> list[Column]:
    stats = [trial_stats(t, study) for t in study.all_trials()]
    cols = []
    if any(s.train_time_s is not None for s in stats):
        cols.append(Column("train_time_s", "train time", fmt_seconds))
    return cols


def all_trials_table(study: Study) -> Table:
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


def _all_trials_columns(study: Study, timing: list[Column]) -> list[Column]:
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
        Column("wall_time_s", "wall time", fmt_seconds),
        Column("notes", "notes"),
        Column("trial_id", "trial id"),
        Column("status", "status"),
        Column("config_json", "full config"),
    ]


def _all_trials_row(
    t: Trial,
    stage: Stage,
    study: Study,
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


def summary_rows(study: Study) -> tuple[list[Trial], bool]:
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


def summary_table(study: Study) -> Table:
    """The course's summary: stage, configuration, params, val/train score, gap, overfitting."""
    tm = task_metrics(study)
    trials, _ = summary_rows(study)
    # The study's compared dimensions plus whatever else differs between the rows (the final
    # stage's longer training, a U-Net vs. backbone model name).
    keys = study_compare_keys(study)
    keys += [k for k in varying_keys(trials) if k not in keys]
    columns = [
        Column("stage", "stage"),
        Column("label", "label"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(f"{tm.val_key}_best", f"{METRIC_TITLES[tm.val_key]} (best)"),
        Column(f"{tm.val_key}_final", f"{METRIC_TITLES[tm.val_key]} (final)"),
        Column(f"{tm.train_key}_final", f"{METRIC_TITLES[tm.train_key]} (final)"),
        Column("gap", "train−val gap (final)", fmt_signed),
        Column("overfitting", "overfitting?"),
        Column("best_epoch", "best epoch"),
        Column("status", "status"),
        Column("best_in_stage", "best of stage", lambda v: BEST_MARK if v else ""),
    ]
    stage_of = {s.name: s for s in study.stages}
    best_ids = _summary_best(study, trials)
    rows, bold = [], set()
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
                t.status if not t.reason else f"{t.status}: {t.reason}",
                is_best,
            ]
        )
    return Table("summary", columns, rows, bold)


def _summary_best(study: Study, trials: list[Trial]) -> set[int]:
    """ids of the trial marked best in each stage (the stage's best, else the best listed row)."""
    marked: set[int] = set()
    for stage in study.stages:
        rows = [t for t in trials if t.stage == stage.name and t.status != "infeasible"]
        if not rows:
            continue
        best = stage_best_trial(stage, study)
        if best is None or all(t is not best for t in rows):
            best = best_of(rows, lambda t: trial_stats(t, study).best_value, study.mode)
        if best is not None:
            marked.add(id(best))
    return marked


def best_per_stage_table(study: Study) -> Table:
    columns = [
        Column("stage", "stage"),
        Column("trial", "best trial"),
        Column("configuration", "configuration"),
        Column("params_m", "params (M)", lambda v: "—" if v is None else f"{v:.2f}"),
        Column(study.metric, f"{METRIC_TITLES.get(study.metric, study.metric)} ({study.mode})"),
        Column("best_epoch", "best epoch"),
        Column("checkpoint", "checkpoint"),
    ]
    rows = []
    for stage in study.stages:
        t = stage_best_trial(stage, study)
        if t is None:
            rows.append([stage.title, None, None, None, None, None, None])
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
                ckpt,
            ]
        )
    return Table("best_per_stage", columns, rows)


def infeasible_table(study: Study) -> Table:
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


def test_metrics_table(evals: Sequence[Evaluation], name: str = "test_metrics") -> Table:
    """One row per evaluation: compares e.g. the base U-Net with the backbone U-Net."""
    keys: list[str] = []
    for ev in evals:
        keys += [k for k in ev.metrics if k not in keys]
    columns = [
        Column("stage", "evaluated stage"),
        Column("params", "params (M)", fmt_params),
        *[Column(k, k.replace("_", " ")) for k in keys],
    ]
    rows = [[ev.stage, ev.params, *[ev.metrics.get(k) for k in keys]] for ev in evals]
    return Table(name, columns, rows)


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
        total = dict(
            zip(ev.class_names, ev.confusion_matrix.sum(axis=1).tolist(), strict=False)
        )
    rows = [[t, p, c] for t, p, c in confused_pairs(ev, top)]
    if total:
        columns.append(Column("share_of_true", "share of true class", fmt_value))
        for r in rows:
            n = total.get(r[0])
            r.append(r[2] / n if n else None)
    return Table(f"most_confused_{ev.stage}", columns, rows)
