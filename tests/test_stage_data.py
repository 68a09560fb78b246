"""Each stage records the data it read, so a study over two data sets (C.1: MNIST stages, then
CIFAR-10) knows every stage's val size: the noise the report judges its winners against.

Before, study.json kept the last stage's data block only, and the report called the noise of
the earlier stages "unknown" (a val set of unrecorded size).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from analysis import noise
from analysis.rundir import load_study

STUDY = """
from orchestrator.study import Stage, Study
study = Study(
    name="two_sets", trainable="classification",
    base={"epochs": 1, "batch_size": 8, "max_batches": 1, "val_fraction": 0.25,
          "dataset": "mnist", "model": "fc"},
    stages=[
        Stage("digits", label="D", scheduler="fifo", inherit="base",
              config={"test_split": "official", "hidden": (16,)}),
        Stage("tiny", label="T", scheduler="fifo", inherit="base",
              config={"dataset": "tiny_imagenet", "classes": 3, "model": "resnet",
                      "channels": (8,), "blocks": (1,), "stem": "cifar"}),
    ],
)
"""


def test_every_stage_records_its_own_data_and_the_report_reads_it(
    tmp_path: Path, ray_session: object, monkeypatch
) -> None:
    from analysis.report import main as report_main
    from orchestrator.run import main as run_main
    from trainables.data import write_mnist, write_tiny_imagenet

    data = tmp_path / "data"
    write_mnist(data, n_classes=10, train_per_class=8, test_per_class=2)
    write_tiny_imagenet(data / "tiny-imagenet-200", n_classes=3, train_per_class=8, val_per_class=4)
    study = tmp_path / "two_sets.py"
    study.write_text(textwrap.dedent(STUDY))
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path / "cache"))
    runs = tmp_path / "runs"
    assert run_main([str(study), "--data-root", str(data), "--storage", str(runs)]) == 0
    run_dir = runs / "two_sets"

    # The producer: each stage's block names its data set and split sizes.
    raw = json.loads((run_dir / "study.json").read_text())
    digits, tiny = (stage["data"] for stage in raw["stages"])
    assert digits["dataset"] == "mnist" and tiny["dataset"] == "tiny_imagenet"
    assert digits["train"] + digits["val"] == 80 and digits["val"] == 20
    assert tiny["val"] != digits["val"]
    assert raw["data"] == tiny  # the study's own block is still the last stage's

    # The consumer: the MNIST stage's noise comes from its own val split, capped by the smoke
    # budget's one batch of 8, not "unknown".
    results = load_study(run_dir)
    (digit_trial,) = results.stages[0].trials
    assert noise.val_images(digit_trial, results) == 8
    assert results.data_of("mnist")["val"] == 20
    assert report_main([str(run_dir)]) == 0
    report = (run_dir / "report" / "report.md").read_text()
    assert "unrecorded size" not in report
    lines = {line.split(":")[0]: line for line in report.splitlines() if line.startswith("- ")}
    assert lines["- digits"].endswith(
        "all 10 classes, folder data, 60 train / 20 val / 20 test, image size 28px"
    )
    assert "18 train / 6 val / 12 test" in lines["- tiny"]
