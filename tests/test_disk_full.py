"""A full disk under the run's storage: exit 2 before training, 3 during, with the cause and the
fix, never a traceback (issue 21: 18 logging tracebacks and an EOFError from Ray, exit 1).

Needs a small tmpfs (mounting one takes root); skipped where the mount is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import orchestrator.run as run
from trainables.data import write_tiny_imagenet

REPO = Path(__file__).resolve().parents[1]
STUDY = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(
    name="full", trainable="classification",
    base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 40, "batch_size": 16,
          "model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"},
    stages=[Stage("only", label="F", scheduler="fifo",
                  space={"lr": tune.grid_search([0.01, 0.003])})])
"""


@pytest.fixture
def small_disk(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    size = getattr(request, "param", "8m")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def write_study(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    write_tiny_imagenet(
        data / "tiny-imagenet-200", n_classes=3, train_per_class=20, val_per_class=4
    )
    study = tmp_path / "full.py"
    study.write_text(textwrap.dedent(STUDY))
    return study, data


def test_storage_without_room_is_refused_before_anything_starts(
    tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study, data = write_study(tmp_path)
    started = time.monotonic()
    code = run.main([str(study), "--data-root", str(data), "--storage", str(small_disk)])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 10
    assert str(small_disk / "full") in err and "MiB free" in err and "--storage" in err
    assert "Traceback" not in err
    assert not (small_disk / "full").exists()  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("small_disk", ["96m"], indirect=True)
def test_disk_filling_up_mid_study_exits_3_naming_it(tmp_path: Path, small_disk: Path) -> None:
    study, data = write_study(tmp_path)
    log = tmp_path / "run.log"
    env = {**os.environ, "ARCHSWEEP_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator.run",
                str(study),
                "--data-root",
                str(data),
                "--storage",
                str(small_disk),
                "--max-concurrent",
                "1",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while not list((small_disk / "full" / "only").glob("F-A_*/checkpoint_*")):
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        fill(small_disk / "filler")
        code = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    text = log.read_text()
    assert code == 3, text[-3000:]
    assert "No space left on device" in text and "Traceback" not in text, text[-3000:]
    assert "Logging error" not in text, text[-3000:]


def fill(path: Path) -> None:
    """Write zeros until the disk is full."""
    block = b"\0" * 2**20
    with open(path, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError:
            pass
