"""The report command on fixture experiment directories (no Ray needed)."""

from __future__ import annotations

import base64
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.report import main
from analysis.rundir import read_result_json
from analysis.summary import overfitting_verdict, val_loss_rising

try:  # tests/ is a rootdir-relative folder, not a package, unless someone adds __init__.py
    from tests.report_fixtures import write_classification_run, write_segmentation_run
except ImportError:
    from report_fixtures import write_classification_run, write_segmentation_run

REPO = Path(__file__).resolve().parents[1]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cls_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_classification_run(tmp_path_factory.mktemp("cls") / "resnet_tiny")
    assert main([str(run)]) == 0
    return run / "report"


@pytest.fixture(scope="module")
def seg_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = write_segmentation_run(tmp_path_factory.mktemp("seg") / "unet_moon")
    out = run.parent / "elsewhere"
    assert main([str(run), "--out", str(out)]) == 0
    return out


def test_writes_every_output(cls_report: Path) -> None:
    assert (cls_report / "report.md").is_file()
    assert (cls_report / "report.html").is_file()
    tables = {p.name for p in (cls_report / "tables").glob("*.csv")}
    assert {
        "all_trials.csv",
        "summary.csv",
        "best_per_stage.csv",
        "infeasible.csv",
        "per_class_final.csv",
        "most_confused_final.csv",
    } <= tables
    figs = {p.name for p in (cls_report / "figures").glob("*.png")}
    assert {
        "curves_baseline.png",
        "curves_channels.png",
        "curves_depth.png",
        "curves_final.png",
        "compare_channels.png",
        "compare_depth.png",
        "confusion_final.png",
        "samples_final.png",
        "gradflow_final.png",
    } <= figs


def test_all_trials_csv_has_one_row_per_trial_with_stop_reason(cls_report: Path) -> None:
    rows = {r["trial_id"]: r for r in _read_csv(cls_report / "tables" / "all_trials.csv")}
    study = json.loads((cls_report.parent / "study.json").read_text())
    assert set(rows) == {t["trial_id"] for s in study["stages"] for t in s["trials"]}
    status = {tid: r["status"] for tid, r in rows.items()}
    assert status == {
        "b0001": "completed",
        "c0001": "completed",
        "c0002": "asha_stopped",
        "c0003": "infeasible",
        "d0001": "completed",
        "d0002": "completed",
        "d0003": "diverged",
        "d0004": "error",
        "d0005": "error",
        "f0001": "completed",
    }
    assert rows["c0002"]["stop_reason"] == "asha_stopped (after epoch 2 of 8)"
    assert rows["d0003"]["stop_reason"] == "diverged: loss is NaN at epoch 4"
    assert rows["c0003"]["stop_reason"].startswith("infeasible: max_channels: 1024 > 512")
    assert rows["c0003"]["epochs_run"] == ""
    # A crashed trial's torn / missing result.json becomes a note, not a crash.
    assert "unreadable line" in rows["d0004"]["notes"]
    assert "result.json missing" in rows["d0005"]["notes"]
    assert float(rows["d0002"]["val_acc_best"]) == pytest.approx(0.5653, abs=1e-3)
    assert rows["d0001"]["configuration"] == "blocks=[1,1,1,1]"
    assert json.loads(rows["d0001"]["config_json"])["blocks"] == [1, 1, 1, 1]


def test_summary_table_lists_labels_in_order_and_marks_best(cls_report: Path) -> None:
    rows = _read_csv(cls_report / "tables" / "summary.csv")
    assert [r["label"] for r in rows] == [
        "Baseline",
        "3.1-A",
        "3.1-B",
        "3.1-C",
        "3.2-A",
        "3.2-B",
        "3.2-C",
        "Final",
    ]
    best = {r["label"] for r in rows if r["best_in_stage"] == "True"}
    assert best == {"Baseline", "3.1-A", "3.2-B", "Final"}
    verdict = {r["label"]: r["overfitting"] for r in rows}
    assert verdict["Baseline"] == "yes"  # big gap and val loss rising at the end
    assert verdict["3.1-A"] == "no"
    md = (cls_report / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    best_lines = [ln for ln in summary.splitlines() if "★ best" in ln]
    assert len(best_lines) == 4
    assert all(ln.startswith("| **") for ln in best_lines)
    assert "gap exceeds 0.10" in summary  # the threshold is documented next to the table


def test_best_per_stage_and_infeasible(cls_report: Path) -> None:
    best = {r["stage"]: r["trial"] for r in _read_csv(cls_report / "tables" / "best_per_stage.csv")}
    assert best == {
        "Baseline": "Baseline",
        "3.1 Channels": "3.1-A",
        "3.2 Depth": "3.2-B",
        "Final model": "Final",
    }
    inf = _read_csv(cls_report / "tables" / "infeasible.csv")
    assert [r["trial"] for r in inf] == ["3.1-C"]
    assert "max_params" in inf[0]["reason"]


def test_evaluation_tables(cls_report: Path) -> None:
    per_class = _read_csv(cls_report / "tables" / "per_class_final.csv")
    assert len(per_class) == 12  # 10 classes + macro and weighted averages
    assert per_class[0]["class"] == "goldfish, Carassius auratus"
    assert per_class[-2]["class"] == "macro avg"
    pairs = _read_csv(cls_report / "tables" / "most_confused_final.csv")
    assert (pairs[0]["true"], pairs[0]["pred"]) == ("bullfrog", "tailed frog")
    md = (cls_report / "report.md").read_text()
    assert "Linear(in_features=256, out_features=10" in md  # print(model) in a code block
    assert "1,230,000 (1.23 M)" in md


def _assert_png_with_content(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert w >= 300 and h >= 200, (path, im.size)
    assert pixels.std() > 10, f"{path.name} looks blank"
    assert (pixels < 200).mean() > 0.01, f"{path.name} has almost no drawn pixels"


def test_figures_are_pngs_with_content(cls_report: Path, seg_report: Path) -> None:
    pngs = [*(cls_report / "figures").glob("*.png"), *(seg_report / "figures").glob("*.png")]
    assert len(pngs) >= 12
    for p in pngs:
        _assert_png_with_content(p)


def _assert_self_contained(report: Path) -> None:
    html = (report / "report.html").read_text()
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    on_disk = {p.read_bytes() for p in (report / "figures").glob("*.png")}
    assert {base64.b64decode(b) for b in embedded} == on_disk
    assert len(embedded) == len(on_disk)
    # Nothing may point outside the file: no sources, stylesheets, scripts or web links.
    srcs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(s.startswith(("data:", "#")) for s in srcs), srcs
    for bad in ("http://", "https://", "<link", "<script", "@import", "url("):
        assert bad not in html, bad


def test_html_embeds_every_figure_and_nothing_external(cls_report: Path, seg_report: Path) -> None:
    _assert_self_contained(cls_report)
    _assert_self_contained(seg_report)
    html = (cls_report / "report.html").read_text()
    assert "<pre>" in html and "ResNet(" in html
    assert 'class="best"' in html


def test_segmentation_report(seg_report: Path) -> None:
    figs = {p.name for p in (seg_report / "figures").glob("*.png")}
    assert {
        "triptych_unet.png",
        "triptych_backbone.png",
        "curves_backbone.png",
        "compare_backbone.png",
    } <= figs
    rows = _read_csv(seg_report / "tables" / "all_trials.csv")
    assert {
        "val_iou_best",
        "val_dice_at_best",
        "val_pixel_acc_at_best",
        "train_time_s",
    } <= set(rows[0])
    assert rows[0]["train_time_s"] == "71.5"
    assert not any(k.endswith("acc_best") and k.startswith("val_acc") for k in rows[0])
    metrics = _read_csv(seg_report / "tables" / "test_metrics.csv")
    assert [r["stage"] for r in metrics] == ["unet", "backbone"]  # U-Net vs backbone table
    assert float(metrics[1]["test_iou"]) == pytest.approx(0.72)
    summary = _read_csv(seg_report / "tables" / "summary.csv")
    assert [r["label"] for r in summary] == ["B.2 U-Net", "B.3-A", "B.3-B"]


def test_running_study_is_reported_with_a_note(tmp_path: Path) -> None:
    run = write_classification_run(tmp_path / "run", status="running")
    assert main([str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    assert "study not finished" in md
    assert "study not finished" in (run / "report" / "report.html").read_text()
    rows = _read_csv(run / "report" / "tables" / "all_trials.csv")
    unlisted = [r for r in rows if r["status"] == "running"]
    assert [r["trial_id"] for r in unlisted] == ["train_f0001"]  # found in final/, not listed


def test_rerun_replaces_stale_outputs(tmp_path: Path) -> None:
    run = write_classification_run(tmp_path / "run")
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old.png").write_bytes(b"stale")
    (out / "figures" / "mine.png").write_bytes(b"the user's")
    (out / ".archsweep-report").write_text("")  # an earlier report's folder (see report_out)
    # ... which listed old.png as its own output; mine.png is not on its list.
    (out / ".archsweep-report-files").write_text('["figures/old.png"]')
    assert main([str(run), "--out", str(out)]) == 0
    assert not (out / "figures" / "old.png").exists()
    assert (out / "figures" / "mine.png").read_bytes() == b"the user's"
    (out / "figures" / "mine.png").unlink()  # not the report's: the page does not embed it
    _assert_self_contained(out)


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing_dir", "does not exist"),
        ("no_study_json", "study.json not found"),
        ("bad_json", "not valid JSON"),
        ("future_version", "has format 7"),
        ("unknown_trainable", "trainable='detection'"),
        ("no_stages", "lacks stages"),
    ],
)
def test_bad_run_dir_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], setup: str, expected: str
) -> None:
    run = tmp_path / "run"
    if setup != "missing_dir":
        run.mkdir()
    base = {"study": "x", "trainable": "classification", "stages": []}
    content = {
        "bad_json": "{not json",
        "future_version": json.dumps(base | {"format": 7}),
        "unknown_trainable": json.dumps(base | {"trainable": "detection"}),
        "no_stages": json.dumps({"study": "x", "trainable": "classification"}),
    }.get(setup)
    if content is not None:
        (run / "study.json").write_text(content)
    assert main([str(run)]) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert str(run) in err
    assert "Traceback" not in err


def test_cli_module_runs_without_ray_torch_or_the_writer(tmp_path: Path) -> None:
    run = write_classification_run(tmp_path / "run")
    code = (
        "import sys; from analysis.report import main; rc = main([sys.argv[1]]); "
        "ok = ('trainables', 'trainables.contract', 'trainables.run_dir'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('ray', 'orchestrator', "
        "'trainables', 'torch') and m not in ok]; print('BAD', bad); sys.exit(rc or bool(bad))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(run)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(tmp_path / "nope")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_result_json_tolerates_torn_lines_and_retried_epochs(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    lines = [
        {"epoch": 1, "val_acc": 0.2, "config": {"lr": 1}},
        {"epoch": 2, "val_acc": 0.3},
        {"epoch": 2, "val_acc": 0.35},  # retried from the epoch-1 checkpoint
        {"training_iteration": 3, "val_acc": 0.4},  # no "epoch": Ray's iteration counts
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"epoch": 4, "val')
    rows, bad = read_result_json(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1]["val_acc"] == 0.35
    assert bad == 1


def test_overfitting_rules() -> None:
    rising = [{"epoch": e, "val_loss": v} for e, v in enumerate([2, 1, 0.8, 0.9, 1.0, 1.1], 1)]
    flat = [{"epoch": e, "val_loss": v} for e, v in enumerate([2, 1, 0.8, 0.7, 0.7, 0.69], 1)]
    assert val_loss_rising(rising) is True
    assert val_loss_rising(flat) is False
    assert val_loss_rising(rising[:3]) is None  # too short to tell
    assert overfitting_verdict(0.2, True) == "yes"
    assert overfitting_verdict(0.2, False) == "gap only"
    assert overfitting_verdict(0.05, True) == "val loss rising"
    assert overfitting_verdict(0.05, False) == "no"
    assert overfitting_verdict(None, None) == "n/a"


def test_odd_but_valid_study_still_reports(tmp_path: Path) -> None:
    """No labels, sparse trial records, a pending stage, a missing evaluation, 1-channel images."""
    # Hand-written JSON on purpose, unlike tests/report_fixtures.py: an old (format 1, no
    # "format" key) and sparse study.json that the contract records would never write, to test
    # that the reader tolerates the run directories already on disk.
    run = tmp_path / "probe"
    (run / "s1" / "t1").mkdir(parents=True)
    (run / "s1" / "t1" / "result.json").write_text(
        "\n".join(
            json.dumps({"epoch": e, "val_acc": 0.1 * e, "train_acc": 0.12 * e}) for e in (1, 2)
        )
        + "\n[1, 2]\n"
    )
    k = 200  # Tiny ImageNet's full class count: no per-cell numbers, still a figure
    cm = np.eye(k, dtype=int) * 3 + 1
    (run / "evaluation").mkdir()
    (run / "evaluation" / "s1.json").write_text(
        json.dumps({"class_names": [f"c{i}" for i in range(k)], "confusion": cm.tolist()})
    )
    rng = np.random.default_rng(0)
    np.savez(
        run / "evaluation" / "s1.npz",
        sample_images=rng.integers(0, 255, (10, 28, 28, 1), dtype=np.uint8),
        sample_true=np.arange(10),
        sample_pred=np.arange(10)[::-1],
    )
    study = {
        "trainable": "classification",
        "status": "running",
        "stages": [
            {
                "name": "s1",
                "trials": [
                    {
                        "trial_id": "t1",
                        "config": {"augment": {"flip": True}},
                        "status": "completed",
                        "trial_dir": "s1/t1",
                    },
                    {"trial_id": "t2", "config": {"augment": None}, "status": "error"},
                ],
            },
            {"name": "s2", "status": "pending"},
        ],
        "evaluations": {"s1": "evaluation/s1.json", "s2": "evaluation/s2.json"},
    }
    (run / "study.json").write_text(json.dumps(study))
    assert main([str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    assert "stage 's2' is pending and has no trials yet" in md
    assert "evaluation/s2.json not found" in md
    assert "No trial carries a label" in md
    for name in ("confusion_s1.png", "samples_s1.png", "curves_s1.png"):
        _assert_png_with_content(run / "report" / "figures" / name)
    rows = _read_csv(run / "report" / "tables" / "all_trials.csv")
    assert [r["status"] for r in rows] == ["completed", "error"]
    assert rows[0]["val_acc_best"] == "0.2"
    _assert_self_contained(run / "report")


def test_run_dir_copied_from_another_machine(tmp_path: Path) -> None:
    """Absolute paths recorded on the cluster still resolve inside the copied run directory."""
    run = write_classification_run(tmp_path / "run")
    study = json.loads((run / "study.json").read_text())
    for stage in study["stages"]:
        for t in stage["trials"]:
            if t["trial_dir"]:
                t["trial_dir"] = f"/mnt/cluster/runs/resnet_tiny/{t['trial_dir']}"
    study["evaluations"] = {"final": "/mnt/cluster/runs/resnet_tiny/evaluation/final.json"}
    (run / "study.json").write_text(json.dumps(study))
    assert main([str(run)]) == 0
    rows = {r["trial_id"]: r for r in _read_csv(run / "report" / "tables" / "all_trials.csv")}
    assert rows["b0001"]["notes"] == ""
    assert (run / "report" / "figures" / "confusion_final.png").is_file()
