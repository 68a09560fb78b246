"""A result.json that lost its first rows (a hard stop before the driver's sync reached remote
storage; seen in CI on S3) is restored from the history saved with each checkpoint."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from trainables.contract import CHECKPOINT_HISTORY
from trainables.data import write_tiny_imagenet

STUDY = """
from orchestrator.study import Stage, Study
study = Study(name="lost", trainable="classification",
              base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 3, "batch_size": 16,
                    "max_batches": 1, "model": "resnet", "channels": (8,), "blocks": (1,),
                    "stem": "cifar"},
              stages=[Stage("only", label="L", scheduler="fifo")])
"""


def epochs_in(path: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in path.read_text().splitlines() if line.strip()]


def test_rows_lost_from_result_json_come_back_from_the_checkpoint(
    tmp_path: Path, ray_session: object, monkeypatch
) -> None:
    from orchestrator.run import main

    data = tmp_path / "data"
    write_tiny_imagenet(data / "tiny-imagenet-200", n_classes=3, train_per_class=8, val_per_class=4)
    study = tmp_path / "lost.py"
    study.write_text(textwrap.dedent(STUDY))
    runs = tmp_path / "runs"
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path / "cache"))
    assert main([str(study), "--data-root", str(data), "--storage", str(runs)]) == 0
    stage_dir = runs / "lost" / "only"
    (trial_dir,) = stage_dir.glob("L*")

    # The producer: every checkpoint holds the rows reported up to it.
    latest = max(trial_dir.glob("checkpoint_*"))
    saved = json.loads((latest / CHECKPOINT_HISTORY).read_text())
    assert [r["epoch"] for r in saved] == [1, 2, 3]
    assert [r["iterations_since_restore"] for r in saved] == [1, 2, 3]
    assert all(isinstance(r["val_acc"], float) for r in saved)

    # What a resumed run on a bucket left behind: Ray's file lacks the first two epochs.
    result_json = trial_dir / "result.json"
    lines = result_json.read_text().splitlines()
    result_json.write_text(lines[2] + "\n")

    from ray.tune import ExperimentAnalysis, ResultGrid

    from orchestrator.records import trial_record
    from trainables.storage import Location

    (result,) = ResultGrid(ExperimentAnalysis(str(stage_dir)))
    record = trial_record(result, Location(runs / "lost"), "val_acc", "max", {})
    assert record.status == "completed" and record.epochs_run == 3
    assert record.attempts[0]["from_epoch"] == 1
    best = max(saved, key=lambda r: r["val_acc"])
    assert record.best_epoch == best["epoch"] and record.best["val_acc"] == best["val_acc"]
    # The consumer (the report's curves) reads result.json: it has every epoch again, in order.
    assert epochs_in(result_json) == [1, 2, 3]
    assert json.loads(result_json.read_text().splitlines()[2]) == json.loads(lines[2])
