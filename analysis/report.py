"""`python -m analysis.report RUN_DIR [--out DIR]`: tables, figures, report.md and report.html.

Reads only the experiment directory (docs/interfaces.md), so it runs on a copied run directory
without Ray. Output (default RUN_DIR/report/): report.md, report.html (self-contained),
tables/*.csv, figures/*.png. Every table that shows a score states the budget it was trained
with; each stage gets a table (with stability), written conclusions (analysis/conclusions.py)
and, for an Optuna stage, Optuna's own figures (analysis/optuna_figures.py).

`python -m analysis.report RUN_A RUN_B [...] [--out DIR]` writes one comparison report instead
(analysis/compare.py).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis import across, asha_savings, figures, noise, optuna_figures, probe_figures
from analysis.conclusions import stage_conclusions
from analysis.document import (
    Bullets,
    Code,
    Heading,
    Note,
    Paragraph,
    to_markdown,
)
from analysis.evaluation import Evaluation, degenerate_output, load_evaluation
from analysis.html import to_html
from analysis.output import ReportBuilder, prepare_out_dir
from analysis.preprocessing import preprocessing_lines
from analysis.rundir import ReportError, StageResults, StudyResults, load_study
from analysis.summary import (
    GAP_THRESHOLD,
    METRIC_TITLES,
    RISING_EPOCHS,
    RISING_RATIO,
    STABILITY_EPOCHS,
    classes_text,
    is_smoke,
    run_budget,
    stage_best_trial,
    task_metrics,
)
from analysis.tables import (
    all_trials_table,
    architecture_table,
    best_per_stage_table,
    confused_table,
    downsample_text,
    fmt_value,
    infeasible_table,
    layer_checks_table,
    markdown_view,
    per_class_table,
    stage_table,
    stage_title,
    summary_constants,
    summary_rows,
    summary_table,
    test_metrics_table,
    val_test_table,
)
from analysis.timeline import timeline_section

# Columns kept in tables/all_trials.csv but left out of the page (too wide to read there).
CSV_ONLY = ("trial_id", "status", "config_json")

OVERFIT_RULE = (
    "Overfitting: 'yes' when the final train−val {score} gap exceeds {gap:.2f} and val loss is "
    "rising (its minimum lies before the last {n} epochs and the final val loss is more than "
    "{pct}% above it); 'gap only' / 'val loss rising' when one holds. The best trial of each "
    "stage (by {metric}) is marked ★ and shown in bold; 'won how' says whether its margin over "
    "the runner-up is outside the noise ('clear') or a tie broken by the raw value. A reference "
    "stage (not a candidate) has no best."
)
NOISE_RULE = (
    "Noise: each val score comes from {n}. A val accuracy is a proportion of those images "
    "(one image moves it by {one}), so each score carries a 95% Wilson interval, and a margin "
    "below 1.96 standard errors of the difference of two proportions is reported as a tie "
    "('within noise'); the same formula is applied to IoU with n = val images, as an "
    "approximation (IoU is a mean over images, not a proportion). Where a configuration ran "
    "with several seeds, a margin within 2× the seed-to-seed std is a tie as well.{f1}"
)
F1_NOTE = (
    " Macro F1 is shown for the evaluated checkpoint only and never ranks trials, so it has no "
    "interval."
)
ALL_TRIALS_INTRO = (
    "Configuration shows the keys each stage compares; 'other varying' the further keys that "
    "differ between the stage's trials. 'best epoch' is the epoch of the best {metric} (speed of "
    "convergence). Stop reasons: completed, asha_stopped (ASHA ended it early), stopped (ended "
    "early without an ASHA decision), diverged (NaN loss), error (crashed), infeasible (rejected "
    "before training). The full configuration of "
    "each trial is in tables/all_trials.csv."
)


def build_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of one run directory; returns the output folder.

    Raises:
        ReportError: run_dir is not a readable experiment directory, or out_dir is not a
            folder the report may write (see `prepare_out_dir`).
    """
    study = load_study(run_dir)
    default = study.root / "report"
    out = Path(out_dir) if out_dir is not None else default
    prepare_out_dir(out, adopt_legacy=out.absolute() == default.absolute())

    b = ReportBuilder(study, out)
    evals = [
        load_evaluation(study.root, stage, rel, study.trainable)
        for stage, rel in study.evaluations.items()
    ]
    b.evaluations = {ev.stage: ev for ev in evals}
    _header(b)
    _summary_section(b)
    _all_trials_section(b)
    for stage in study.stages:
        _stage_section(b, stage)
    _across_section(b)
    for ev in evals:
        _evaluation_section(b, ev)
    if len(evals) > 1:
        b.add(Heading(2, "Test metrics across evaluations"))
        b.table(test_metrics_table(evals, study=study))
    timeline_section(b)
    _constraints_section(b)

    title = f"archsweep report: {study.name}"
    (out / "report.md").write_text(to_markdown(b.blocks, out))
    (out / "report.html").write_text(to_html(b.blocks, title))
    return out


def _header(b: ReportBuilder) -> None:
    s = b.study
    budget = s.record.run_settings.get("budget")
    suffix = f" (budget: {budget}, not the course's)" if budget else ""
    b.add(Heading(1, f"archsweep report: {s.name}{suffix}"))
    if s.description:
        b.add(Paragraph(s.description))
    counts = Counter(t.status for t in s.all_trials())
    b.add(
        Bullets(
            [
                f"Run directory: {s.root}",
                f"Task: {s.trainable}; selection metric: {s.metric} ({s.mode})",
                f"Status: {s.status}; {len(s.stages)} stage(s), {sum(counts.values())} trial(s) ("
                + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                + ")",
                _run_settings_text(s),
            ]
        )
    )
    data_lines = _stage_data_lines(s)
    if data_lines:
        b.add(
            Paragraph(
                "Data of each stage (from its trials' configuration; the counts are those "
                "of the data set the study read last):"
            )
        )
        b.add(Bullets(data_lines))
    if is_smoke(s):
        b.add(
            Note(
                "smoke run (--smoke): every number below comes from a pipeline check of a few "
                "batches, not from the course's budget; the 'budget' column of each table says "
                "what each trial trained with."
            )
        )
    b.add(Paragraph(_noise_text(s)))
    if not s.finished:
        b.add(
            Note(
                f"study not finished (status {s.status!r}): the numbers below are a snapshot; "
                "stages still running or pending are incomplete."
            )
        )
    for stage in s.stages:
        if stage.status != "finished":
            b.add(
                Note(
                    f"stage {stage.title!r} is {stage.status}"
                    + (" and has no trials yet." if not stage.trials else ".")
                )
            )


def _noise_text(s: StudyResults) -> str:
    sizes = sorted({n for t in s.all_trials() if (n := noise.val_images(t, s))})
    f1 = F1_NOTE if s.trainable == "classification" else ""
    if not sizes:
        return NOISE_RULE.format(n="a val set of unrecorded size", one="1/n", f1=f1)
    counts = " or ".join(str(n) for n in sizes)
    return NOISE_RULE.format(
        n=f"{counts} val images", one=f"{100 / sizes[0]:.2f} points at n = {sizes[0]}", f1=f1
    )


def _run_settings_text(s: StudyResults) -> str:
    rs = s.record.run_settings
    over = rs.get("set") or {}
    text = "Run: " + run_budget(s)
    if over:
        text += "; --set " + ", ".join(f"{k}={fmt_value(v)}" for k, v in over.items())
    return text


def _stage_data_lines(s: StudyResults) -> list[str]:
    """One line per stage naming its own data: its trials' configuration, and the folder and
    split sizes the stage read (its own data block; runs written before stages had one record
    the last stage's only, in study.json's "data")."""
    ran = [st for st in s.stages if any(t.config for t in st.trials)]
    lines = []
    for stage in ran:
        bits = _config_data_bits([t.config for t in stage.trials if t.config], s)
        if stage.data:
            bits += _recorded_data_bits(s, bits, stage.data)
        elif stage is ran[-1]:
            bits += _recorded_data_bits(s, bits, s.data)
        if bits:
            lines.append(f"{stage.title}: " + ", ".join(dict.fromkeys(bits)))
    if not lines:  # no trial configs (an old or sparse study.json): what study.json says
        bits = _recorded_data_bits(s, [], s.data)
        if bits:
            lines.append("all stages: " + ", ".join(bits))
    return lines


def _config_data_bits(configs: list[dict], s: StudyResults) -> list[str]:
    def values(key: str) -> list[str]:
        return list(dict.fromkeys(str(c[key]) for c in configs if c.get(key) is not None))

    bits = []
    names = values("dataset")
    if names:
        bits.append("data set " + " / ".join(names))
    folders = list(dict.fromkeys(Path(d).name for d in values("data_dir")))
    if folders:
        bits.append("folder " + " / ".join(folders))
    classes = list(dict.fromkeys(filter(None, (classes_text(c, s) for c in configs))))
    bits += classes
    sizes = values("image_size")
    if sizes:
        bits.append("image size " + " / ".join(f"{v}px" for v in sizes))
    return bits


def _recorded_data_bits(s: StudyResults, have: list[str], d: dict[str, Any]) -> list[str]:
    """A recorded data block: the folder actually read and the split sizes."""
    bits = []
    if d.get("dataset") and not any(b.startswith("data set") for b in have):
        bits.append(f"data set {d['dataset']}")
    if d.get("folder"):
        bits.append(f"folder {d['folder']}")
    if s.trainable == "segmentation":
        bits.append("binary masks")  # not "1 classes": the class list names the positive class
    elif any("class" in b for b in have):
        pass  # the trials' configuration named the classes already ("all 10 classes")
    elif d.get("targets"):
        bits.append(str(d["targets"]))
    elif d.get("class_names"):
        bits.append(f"{len(d['class_names'])} classes")
    split = [f"{d[k]} {k}" for k in ("train", "val", "test") if k in d]
    if split:
        bits.append(" / ".join(split))
    if d.get("image_size") and not any(b.startswith("image size") for b in have):
        bits.append(f"image size {d['image_size']}px")
    return bits


def _summary_section(b: ReportBuilder) -> None:
    s = b.study
    tm = task_metrics(s)
    b.add(Heading(2, "Summary"))
    _, labelled = summary_rows(s)
    b.add(
        Paragraph(
            (
                "One row per labelled trial, ordered by stage then label. "
                if labelled
                else "No trial carries a label in study.json: one row per stage, its best trial. "
            )
            + OVERFIT_RULE.format(
                score=tm.score_title,
                gap=GAP_THRESHOLD,
                n=RISING_EPOCHS,
                pct=round((RISING_RATIO - 1) * 100),
                metric=s.metric,
            )
        )
    )
    same = summary_constants(s)
    if same:
        b.add(Paragraph(f"Same in every row: {same}."))
    b.add(
        Paragraph(
            "Accuracies in %; the 'budget' column gives each row's epochs, image size, classes "
            "and share of the training data."
            if tm.score == "acc"
            else "The 'budget' column gives each row's epochs, image size and share of the "
            "training data."
        )
    )
    b.table(summary_table(s))
    b.add(Heading(2, "Best trial per stage"))
    b.table(best_per_stage_table(s))
    inf = infeasible_table(s)
    b.add(Heading(2, "Infeasible configurations"))
    if inf.rows:
        b.add(Paragraph("Rejected before training because they break a constraint."))
        b.table(inf)
    else:
        b.add(Paragraph("None: every configuration satisfied the study's constraints."))


def _all_trials_section(b: ReportBuilder) -> None:
    s = b.study
    b.add(Heading(2, "All trials"))
    b.add(Paragraph(ALL_TRIALS_INTRO.format(metric=s.metric)))
    table = all_trials_table(s)
    b.table(table, markdown_view(table, CSV_ONLY))
    b.figure(
        "params_vs_score",
        "Parameters against best validation score, every trial (one panel per data set)",
        lambda p: figures.params_vs_score(s, p),
    )


def _stage_section(b: ReportBuilder, stage: StageResults) -> None:
    s = b.study
    tm = task_metrics(s)
    b.add(Heading(2, f"Stage: {stage.title}"))
    counts = Counter(t.status for t in stage.trials)
    b.add(
        Paragraph(
            f"Stage '{stage.name}' ({stage.status}): {len(stage.trials)} trial(s), "
            + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none")
            + f"; scheduler {stage.scheduler or 'n/a'}; {_epochs_text(stage.epochs)}; compares "
            + (", ".join(stage.compare) or _single_text(s))
            + "."
        )
    )
    notes = [f"{t.name}: {n}" for t in stage.trials for n in t.notes]
    if notes:
        b.add(Note("some trials lack data: " + "; ".join(notes)))
    for t in stage.trials:
        warning = across.schedule_warning(t)
        if warning:
            b.add(Note(f"schedule that never happened: {warning}"))
    prep = preprocessing_lines(stage, b.evaluations.get(stage.name), s.trainable)
    if prep:
        b.add(Paragraph(f"Preprocessing ({stage.title}), from the trials' configuration:"))
        b.add(Bullets(prep))
    if stage.trials:
        b.add(
            Paragraph(
                f"Stability: std of {METRIC_TITLES[tm.val_key]} over each trial's last "
                f"{STABILITY_EPOCHS} epochs (— with fewer epochs); seed spread: std of the best "
                "value over trials of the same configuration with other seeds (— when each "
                "configuration ran once)."
            )
        )
        b.table(stage_table(stage, s))
        b.add(Heading(3, f"Conclusions ({stage.title})"))
        b.add(Bullets(stage_conclusions(stage, s)))
    if stage.best_model:
        first, _, rest = stage.best_model.partition("\n")
        best = stage.best.label if stage.best else None
        b.add(Paragraph(f"Best configuration{f' ({best})' if best else ''}: {first}."))
        b.add(Code(rest or first, f"print(model) of the best configuration of {stage.title}"))
    drew = b.figure(
        f"curves_{stage.name}",
        f"{stage.title}: {tm.score_title} and loss per epoch (train dashed, val solid)",
        lambda p: figures.learning_curves(stage, s, p),
    )
    if not drew:
        b.add(Paragraph("No per-epoch results to plot for this stage."))
    if len(stage.trials) > 1:
        b.figure(
            f"compare_{stage.name}",
            f"{stage.title}: {METRIC_TITLES[tm.val_key]} of all trials together",
            lambda p: figures.comparison(stage, s, p),
        )
    if optuna_figures.is_optuna_stage(stage):
        _optuna_section(b, stage)
    if stage.scheduler == "asha":
        _asha_savings_section(b, stage)
    _layers_section(b, stage)
    _layer_checks_section(b, stage)
    if stage.name in b.evaluations:
        title = stage.title or stage.name
        val = (
            "val IoU, Dice and pixel accuracy"
            if s.trainable == "segmentation"
            else "val accuracy and val macro F1"
        )
        b.add(
            Paragraph(
                f"The best checkpoint of this stage was evaluated: its {val}, test metrics and "
                f"architecture by part (blocks, channels, where it downsamples, output size of "
                f"each part) are in 'Test evaluation: {title}'."
            )
        )


def _single_text(s: StudyResults) -> str:
    where = "the other stages in 'Across stages'" if across.applies(s) else "no other stage"
    return f"one configuration, set against {where}"


def _across_section(b: ReportBuilder) -> None:
    """One model per stage (C.1, C.2, B.3): the comparison happens between stages."""
    if not across.applies(b.study):
        return
    b.add(Heading(2, "Across stages"))
    b.add(
        Paragraph(
            "Each of these stages trained one model, so the comparison is between stages: "
            "each stage's best trial, per data set, against the noise of its val set."
        )
    )
    lines = across.answers(b.study, b.evaluations)
    if lines:
        b.add(Bullets(lines))
    b.figure(
        "across_stages",
        "The stages' models on shared axes: val score with its 95% interval, test score, "
        "seconds per epoch",
        lambda p: across.shared_axes_figure(b.study, b.evaluations, p),
    )


def _asha_savings_section(b: ReportBuilder, stage: StageResults) -> None:
    """Epochs ASHA trained against FIFO on the same trials, and the winner (asha_savings.py)."""
    savings = asha_savings.stage_savings(stage, b.study)
    b.add(Heading(3, f"ASHA savings ({stage.title})"))
    if savings.rows:
        b.table(asha_savings.savings_table(savings, b.study))
    b.add(Bullets(asha_savings.savings_lines(savings)))


def _layer_checks_section(b: ReportBuilder, stage: StageResults) -> None:
    """Course E.1: each custom layer of the stage's trained trials against its reference
    computation and its standard analogue (run now, on the trials' best checkpoints)."""
    from analysis import custom_layers  # torch and the model code, for such a stage only

    if not custom_layers.uses_custom_layers(stage):
        return
    checks = custom_layers.stage_layer_checks(b.study, stage)
    b.add(Heading(3, f"Custom layer checks ({stage.title})"))
    b.add(
        Paragraph(
            "Each custom layer of each trial that uses one, loaded from the trial's best "
            "checkpoint (the trained weights) and run on a fixed random input (seed 0): its "
            "output against a reference computation written out from its own weights, its "
            "shape and parameters against its standard analogue (nn.SiLU, no attention, "
            "nn.Conv2d, nn.AvgPool2d / max-pool). Every instance in the model is checked; the "
            "measured value is the worst one, with the tolerance it had to meet "
            "(trainables/models/layer_checks.py; tests/test_layers.py checks the same facts)."
        )
    )
    for note in checks.notes:
        b.add(Note(note))
    plain = [t.name for t in stage.trials if t.config and not custom_layers.custom_layers(t.config)]
    if plain:
        b.add(
            Paragraph(
                "Without a custom layer (the standard analogues only, nothing to check): "
                + ", ".join(plain)
                + "."
            )
        )
    if checks.rows:
        b.add(Paragraph(f"{checks.passed} of {len(checks.rows)} checks pass."))
        b.table(layer_checks_table(checks.rows, stage))


def _layers_section(b: ReportBuilder, stage: StageResults) -> None:
    """Gradient flow, feature maps and receptive fields that each trial recorded (C.2, D.1,
    D.2): which layers' gradients vanish or explode, what the filters respond to, how far
    each layer sees."""
    probes = probe_figures.stage_probes(b.study, stage)
    if not probes:
        return
    budget = figures.stage_budget(stage, b.study)
    b.add(Heading(3, f"Layers ({stage.title})"))
    b.figure(
        f"gradflow_trials_{stage.name}",
        f"{stage.title}: gradient norm per named block in the last epoch (mean of its first "
        "training batches), input side left, blocks aligned by name across trials; a fall to "
        "the left means vanishing gradients",
        lambda p: probe_figures.gradient_flow(
            probes, f"{stage.title}: gradient flow", p, budget=budget, stage=stage
        ),
    )
    b.figure(
        f"maps_first_{stage.name}",
        f"{stage.title}: one validation image and the first conv layer's maps of each trial",
        lambda p: probe_figures.first_layer_maps(
            probes, f"{stage.title}: first-layer maps", p, budget=budget
        ),
    )
    missing = probe_figures.missing_maps(stage, probes)
    if missing:
        b.add(Note("no feature maps for " + "; ".join(missing) + "."))
    best = stage_best_trial(stage, b.study)
    for probe in probes:
        if probe.trial is best:
            b.figure(
                f"maps_depth_{stage.name}",
                f"{stage.title}: feature maps of {best.name} at each depth (input side first)",
                lambda p, probe=probe: probe_figures.depth_maps(
                    probe, f"{stage.title}: {probe.trial.name} by depth", p, budget=budget
                ),
            )
    table = probe_figures.receptive_field_table(probes, stage)
    if table is not None:
        b.add(
            Paragraph(
                "Receptive field of every conv/pool layer on the main path (input "
                "pixels one output of the layer sees; shortcuts and SE left out)."
            )
        )
        b.table(table)


def _epochs_text(epochs: int | None) -> str:
    if epochs is None:
        return "? epochs"
    return f"{epochs} epoch" if epochs == 1 else f"{epochs} epochs"


def _optuna_section(b: ReportBuilder, stage: StageResults) -> None:
    """Optuna's history and importances, from a study rebuilt out of the recorded trials."""
    b.add(Heading(3, f"Optuna search ({stage.title})"))
    try:
        ostudy = optuna_figures.rebuild_study(stage, b.study)
    except ValueError as exc:
        b.add(Paragraph(f"No Optuna figures: {exc}."))
        return
    b.add(
        Paragraph(
            f"Rebuilt from the {len(ostudy.trials)} recorded trial(s) of this stage (ASHA stops "
            "count as pruned, errors as failed); objective: best {b.study.metric} of each trial."
        )
    )
    drew = b.figure(
        f"optuna_history_{stage.name}",
        f"{stage.title}: Optuna optimization history",
        lambda p: optuna_figures.optimization_history(
            ostudy,
            p,
            stage.title or stage.name,
            b.study.metric,
            budget=figures.stage_budget(stage, b.study),
        ),
    )
    drew |= b.figure(
        f"optuna_importances_{stage.name}",
        f"{stage.title}: Optuna parameter importances (fANOVA over the "
        f"{optuna_figures.completed(ostudy)} completed trials; with few trials a rough guide)",
        lambda p: optuna_figures.param_importances(
            ostudy, p, stage.title or stage.name, budget=figures.stage_budget(stage, b.study)
        ),
    )
    if not drew:
        b.add(Paragraph("No Optuna figures: the stage has no completed trial yet."))


def _evaluation_section(b: ReportBuilder, ev: Evaluation) -> None:
    title = stage_title(b.study, ev.stage)
    trial = next(
        (t for t in b.study.all_trials() if ev.trial_id and t.trial_id == ev.trial_id), None
    )
    budget = figures.trials_budget(b.study, [trial] if trial else [])
    b.add(Heading(2, f"Test evaluation: {title}"))
    facts = [
        f"{k}: {v}"
        for k, v in (
            ("stage", ev.stage if ev.stage != title else None),
            ("trial", ev.trial_id),
            ("checkpoint", ev.checkpoint),
            ("parameters", _params_text(ev.params)),
        )
        if v
    ]
    if facts:
        b.add(Bullets(facts))
    for n in ev.notes:
        b.add(Note(n))
    collapsed = degenerate_output(ev)
    if collapsed:
        b.add(Note(f"degenerate output: {collapsed}"))
    if ev.metrics:
        b.table(test_metrics_table([ev], name=f"test_metrics_{ev.stage}", study=b.study))
    _val_test_section(b, ev, title)
    if ev.task == "segmentation":
        b.figure(
            f"triptych_{ev.stage}",
            "Input, predicted mask and ground truth (test set; masks on a fixed 0..1 scale: "
            "white = rock, black = background)",
            lambda p: figures.segmentation_triptych(ev, p, title=title, budget=budget),
        )
    else:
        _classification_eval(b, ev, title, budget)
    frozen = trial is not None and figures.encoder_frozen(trial.config, ev.epoch)
    b.figure(
        f"gradflow_{ev.stage}",
        "Gradient norm per layer (one backward pass of the evaluated checkpoint on a test batch)"
        + (
            "; grey: encoder frozen in training, so training never had these gradients"
            if frozen
            else ""
        ),
        lambda p: figures.gradient_flow(ev, p, title=title, budget=budget, frozen=frozen),
    )
    if ev.model_summary or ev.architecture:
        b.add(Heading(3, f"Architecture ({title})"))
        b.add(Paragraph(f"Parameters: {_params_text(ev.params)}."))
        if ev.architecture:
            b.add(Bullets(_architecture_lines(ev)))
            b.add(
                Paragraph(
                    "By part, measured on one input of the trained size (stride vs "
                    "input = input side / output side):"
                )
            )
            b.table(architecture_table(ev))
        if ev.model_summary:
            b.add(Code(ev.model_summary, "print(model)"))


def _val_test_section(b: ReportBuilder, ev: Evaluation, title: str) -> None:
    """The evaluated checkpoint's val and test metrics side by side (course B.1: top-1 val
    accuracy and macro F1)."""
    table = val_test_table(ev, b.study)
    if not table.rows:
        return
    b.add(Heading(3, f"Validation and test ({title})"))
    score = "accuracy and macro F1" if ev.task != "segmentation" else "IoU, Dice and pixel acc"
    b.add(
        Paragraph(
            f"{score[0].upper()}{score[1:]} of the evaluated checkpoint (epoch {ev.epoch}) on the "
            f"whole val split and on the test split, computed from its predictions; the middle "
            "row is what its trial reported at that epoch (macro F1 is not a per-epoch "
            "metric; a run with max_batches validates on those batches only)."
        )
    )
    b.table(table)


def _architecture_lines(ev: Evaluation) -> list[str]:
    """Blocks and channels per stage, where it downsamples, feature map size at each part."""
    rows = ev.architecture
    parts = [r for r in rows if r.get("part") != "input"]
    stages = [r for r in parts if r.get("blocks")]
    lines = []
    if stages:
        kinds = sorted({str(r.get("block")) for r in stages})
        lines.append(
            f"{len(stages)} stages of {' / '.join(kinds)} blocks: blocks per stage "
            + "-".join(str(r["blocks"]) for r in stages)
            + ", channels per stage "
            + "-".join(str((r.get("out_shape") or ["?"])[0]) for r in stages)
            + "."
        )
    down = [d for r in parts for d in r.get("downsamples_at") or []]
    if down:
        lines.append("Downsamples at: " + "; ".join(downsample_text(d) for d in down) + ".")
    sizes = []
    for r in rows:
        out = r.get("out_shape") or []
        if len(out) == 3:
            sizes.append(f"{r['part']} {out[0]}×{out[1]}×{out[2]}")
        elif out:
            what = (
                " (one per class)"
                if ev.task == "classification" and ev.class_names and out[0] == len(ev.class_names)
                else ""
            )
            sizes.append(f"{r['part']} {out[0]} outputs{what}")
    if sizes:
        lines.append("Output size after each part (C×H×W): " + " → ".join(sizes) + ".")
    return lines


def _params_text(n: int | None) -> str | None:
    return None if n is None else f"{n:,} ({n / 1e6:.2f} M)"


def _classification_eval(b: ReportBuilder, ev: Evaluation, title: str, budget: str) -> None:
    if ev.per_class:
        b.add(Heading(3, f"Per-class precision, recall and F1 ({title})"))
        b.table(per_class_table(ev))
    b.figure(
        f"confusion_{ev.stage}",
        "Confusion matrix on the test set (colour = row share)",
        lambda p: figures.confusion_matrix(ev, p, title=title, budget=budget),
    )
    b.figure(
        f"samples_{ev.stage}",
        "Test images with true and predicted class (green = right, red = wrong)",
        lambda p: figures.sample_predictions(ev, p, title=title, budget=budget),
    )
    conf = confused_table(ev)
    if conf.rows:
        b.add(Heading(3, f"Most confused class pairs ({title})"))
        b.table(conf)


def _constraints_section(b: ReportBuilder) -> None:
    if not b.study.constraints:
        return
    b.add(Heading(2, "Constraints"))
    b.add(Bullets([f"{k}: {fmt_value(v)}" for k, v in b.study.constraints.items()]))


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point (console script archsweep-report). Returns the exit code.

    One RUN_DIR writes that run's report; two or more write one comparison report
    (analysis/compare.py).
    """
    parser = argparse.ArgumentParser(
        prog="archsweep-report",
        description="Write tables, figures, report.md and a self-contained report.html for one "
        "experiment directory (runs/<study>/), or one comparison report for several.",
    )
    parser.add_argument(
        "run_dir",
        type=str,  # a folder or a URI (s3://bucket/runs/x): Path would mangle the URI
        nargs="+",
        help="experiment directory holding study.json; give two or more to compare runs "
        "(summaries side by side, curves on shared axes, mean ± std over seeds)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder: a new or empty one, or one an earlier report created (default: "
        "RUN_DIR/report; for a comparison, compare_<A>_vs_<B> beside the first run); a "
        "folder holding other files is refused, never overwritten",
    )
    args = parser.parse_args(argv)
    try:
        if len(args.run_dir) == 1:
            out = build_report(args.run_dir[0], args.out)
        else:
            from analysis.compare import build_comparison

            out = build_comparison(args.run_dir, args.out)
    except ReportError as exc:
        print(f"archsweep-report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report written: {out / 'report.md'} and {out / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
