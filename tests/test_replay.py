"""Replay outside Ray: a trial of a finished study, retrained in a plain process, must reproduce
the recorded metrics (CPU, one thread, the trial's seed), and a replay from a checkpoint must
continue where the trial stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.replay import COMPARED, TOLERANCE
from orchestrator.replay import main as replay_main
from orchestrator.run import main as run_main
from trainables.data import write_tiny_imagenet

REPO = Path(__file__).resolve().parents[1]

# Augmentation on (its RNG must be replayed too) and one bf16 trial (CPU autocast).
STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="replay", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 2, "batch_size": 16,
          "max_batches": 3, "augment": {"hflip": True, "crop_padding": 4},
          "model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"},
    stages=[Stage("only", label="P", scheduler="fifo",
                  space={"precision": tune.grid_search(["fp32", "bf16"])})])
"""


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, ray_session: object
) -> tuple[Path, Path, Path]:
    """(run dir, data root, cache dir) of a finished two-trial study."""
    root = tmp_path_factory.mktemp("replay")
    data = root / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    study = root / "replay.py"
    study.write_text(textwrap.dedent(STUDY))
    cache = root / "cache"
    old = os.environ.get("ARCHSWEEP_CACHE")
    os.environ["ARCHSWEEP_CACHE"] = str(cache)
    try:
        code = run_main([str(study), "--data-root", str(data), "--storage", str(root / "runs")])
    finally:
        if old is None:
            os.environ.pop("ARCHSWEEP_CACHE")
        else:
            os.environ["ARCHSWEEP_CACHE"] = old
    assert code == 0
    return root / "runs" / "replay", data, cache


def replay(run_dir: Path, data: Path | None, cache: Path, *args: str) -> dict:
    """Replay in a fresh process (as a user would), asserting Ray was never imported. With
    `data` None the replay gets no --data-root, and $ARCHSWEEP_DATA names an empty folder."""
    out = run_dir / "replays" / "-".join(a.strip("-") for a in args)
    root = ["--data-root", str(data)] if data is not None else []
    code = (
        "import sys\n"
        "from orchestrator.replay import main\n"
        f"rc = main([{str(run_dir)!r}, *{list(args)!r}, *{root!r}, "
        f"'--out', {str(out)!r}])\n"
        "assert 'ray' not in sys.modules, 'replay imported Ray'\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "ARCHSWEEP_CACHE": str(cache)}
    if data is None:
        env["ARCHSWEEP_DATA"] = str(run_dir.parent / "no_data_here")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "replay.json").read_text())


def tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def assert_matches(row: dict) -> None:
    metrics = row["metrics"]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr"} <= set(metrics)
    assert set(metrics) <= set(COMPARED)
    for key, m in metrics.items():
        assert m["recorded"] is not None, f"epoch {row['epoch']} {key}: nothing recorded"
        assert abs(m["diff"]) <= TOLERANCE, f"epoch {row['epoch']} {key}: {m}"


@pytest.mark.parametrize("label", ["P-A", "P-B"])
def test_replay_reproduces_recorded_epochs(
    finished_run: tuple[Path, Path, Path], label: str
) -> None:
    run_dir, data, cache = finished_run
    record = json.loads((run_dir / "study.json").read_text())
    trial = next(t for t in record["stages"][0]["trials"] if t["label"] == label)
    before = tree(run_dir / trial["trial_dir"])
    summary = replay(run_dir, data, cache, label)
    assert [r["epoch"] for r in summary["epochs"]] == [1, 2]
    for row in summary["epochs"]:
        assert_matches(row)
    # The run's own trial folder is only read.
    assert tree(run_dir / trial["trial_dir"]) == before


def test_replay_by_trial_id(finished_run: tuple[Path, Path, Path]) -> None:
    run_dir, data, cache = finished_run
    record = json.loads((run_dir / "study.json").read_text())
    trial = record["stages"][0]["trials"][0]
    summary = replay(run_dir, data, cache, trial["trial_id"], "--epochs", "1")
    assert summary["label"] == trial["label"]
    (row,) = summary["epochs"]
    assert_matches(row)


def test_replay_from_checkpoint_continues(
    finished_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """A trial interrupted after epoch 1 (its epoch-2 checkpoint removed, in a copy of the run):
    the replay starts from epoch 1's checkpoint and its epoch 2 is the recorded epoch 2."""
    run_dir, data, cache = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("replays"))
    record = json.loads((copy / "study.json").read_text())
    trial = next(t for t in record["stages"][0]["trials"] if t["label"] == "P-A")
    checkpoints = sorted((copy / trial["trial_dir"]).glob("checkpoint_*"))
    assert len(checkpoints) == 2
    shutil.rmtree(checkpoints[-1])
    summary = replay(copy, data, cache, "P-A", "--from-checkpoint", "--epochs", "1")
    assert summary["from_checkpoint"].endswith(checkpoints[0].name)
    (row,) = summary["epochs"]
    assert row["epoch"] == 2
    assert_matches(row)


def test_replay_past_the_end_of_a_finished_trial(finished_run: tuple[Path, Path, Path]) -> None:
    run_dir, data, cache = finished_run
    summary = replay(run_dir, data, cache, "P-B", "--from-checkpoint")
    (row,) = summary["epochs"]
    assert row["epoch"] == 3
    assert all(m["recorded"] is None for m in row["metrics"].values())
    assert summary["config"]["epochs"] == 3


def test_unknown_trial_lists_valid_labels(
    finished_run: tuple[Path, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_dir, data, _ = finished_run
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # main sets it; undone after the test
    assert replay_main([str(run_dir), "3.3-Z", "--data-root", str(data)]) == 2
    err = capsys.readouterr().err
    assert "'3.3-Z'" in err and "P-A" in err and "P-B" in err


def test_run_dir_without_study_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert replay_main([str(tmp_path), "P-A"]) == 2
    assert "study.json" in capsys.readouterr().err


def test_replay_reads_the_data_root_and_threads_the_run_recorded(
    finished_run: tuple[Path, Path, Path],
) -> None:
    """No --data-root: study.json's data block says where the run read its data (was: a
    download attempt, then a DataError traceback); --threads follows the trial's CPUs."""
    run_dir, data, cache = finished_run
    record = json.loads((run_dir / "study.json").read_text())
    assert record["data"]["data_root"] == str(data.absolute())
    summary = replay(run_dir, None, cache, "P-A", "--epochs", "1")
    assert summary["threads"] == 1  # --cpus-per-trial 1
    assert_matches(summary["epochs"][0])
