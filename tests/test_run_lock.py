"""The run lock guards `--fresh`: a live run's folder is never moved, and of two `--fresh` at once
only one moves the folder (issue 21: the live run lost its lock and its checkpoints)."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest

import orchestrator.run as run
from orchestrator.study import StudyError
from trainables.run_dir import LOCK_FILE
from trainables.storage import Location

STUDY = """
from orchestrator.study import Stage, Study
study = Study(name="locked", trainable="classification",
              base={"dataset": "tiny_imagenet", "classes": 2, "epochs": 1, "model": "resnet",
                    "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"},
              stages=[Stage("s1")])
"""


def old_run(root: Path, owner_pid: int | None = None) -> Path:
    run_dir = root / "runs" / "locked"
    run_dir.mkdir(parents=True)
    (run_dir / "study.json").write_text('{"old": true}')
    if owner_pid is not None:
        owner = {"pid": owner_pid, "host": socket.gethostname(), "since": "2026-12-05 06:00:00"}
        (run_dir / LOCK_FILE).write_text(json.dumps(owner))
    return run_dir


def test_fresh_on_a_live_run_is_refused_naming_its_pid_and_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = os.getppid()  # a process that outlives the test, and not this one
    run_dir = old_run(tmp_path, owner_pid=live)
    study = tmp_path / "locked.py"
    study.write_text(STUDY)
    code = run.main([str(study), "--storage", str(tmp_path / "runs"), "--fresh"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"pid {live} on {socket.gethostname()}" in err and "Traceback" not in err
    assert (run_dir / "study.json").read_text() == '{"old": true}'  # not moved
    assert json.loads((run_dir / LOCK_FILE).read_text())["pid"] == live  # not taken
    assert not list(run_dir.parent.glob("locked.old-*"))


def test_fresh_over_a_dead_runs_lock_moves_it_and_leaves_no_lock_behind(tmp_path: Path) -> None:
    run_dir = old_run(tmp_path, owner_pid=2**22 + 4321)  # above pid_max: no such process
    run.fresh_start(Location(str(run_dir)))
    (moved,) = run_dir.parent.glob("locked.old-*")
    assert (moved / "study.json").read_text() == '{"old": true}'
    assert not (moved / LOCK_FILE).exists() and not run_dir.exists()


def test_fresh_twice_in_one_second_keeps_both_old_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was `OSError: [Errno 39] Directory not empty` (the same .old-<time> name twice)."""
    monkeypatch.setattr(run.time, "strftime", lambda fmt: "20261205-070000")
    run_dir = old_run(tmp_path)
    run.fresh_start(Location(str(run_dir)))
    run_dir.mkdir()
    (run_dir / "study.json").write_text('{"second": true}')
    run.fresh_start(Location(str(run_dir)))
    names = sorted(p.name for p in run_dir.parent.glob("locked.old-*"))
    assert names == ["locked.old-20261205-070000", "locked.old-20261205-070000-2"]
    assert (run_dir.parent / names[1] / "study.json").read_text() == '{"second": true}'


def _fresh_when_released(run_dir: str, start: multiprocessing.synchronize.Event, out) -> None:
    start.wait()
    try:
        run.fresh_start(Location(run_dir))
        out.put("moved")
    except StudyError as err:
        out.put(f"refused: {err}")
    except Exception as err:  # what the test must never see
        out.put(f"crash: {type(err).__name__}: {err}")


def test_two_fresh_at_once_move_the_folder_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    for round_ in range(5):
        root = tmp_path / f"round{round_}"
        run_dir = old_run(root)
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_fresh_when_released, args=(str(run_dir), start, out))
            for _ in range(2)
        ]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(timeout=60)
        results = sorted(out.get(timeout=5) for _ in procs)
        assert not any(r.startswith("crash") for r in results), results
        moved = list(run_dir.parent.glob("locked.old-*"))
        # The old run was moved once and is intact; a second move, if any, held nothing.
        with_data = [m for m in moved if (m / "study.json").is_file()]
        assert len(with_data) == 1, (results, moved)
        assert (with_data[0] / "study.json").read_text() == '{"old": true}'
        assert not any((m / LOCK_FILE).exists() for m in moved)
        assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_file_being_written_is_waited_for_not_cleared(tmp_path: Path) -> None:
    """The owner creates the lock file, then writes its pid: a second run that reads it in
    between must not take it for torn (both --fresh then held the lock; seen in the suite)."""
    import threading

    from orchestrator.lock import RunLock

    run_dir = old_run(tmp_path)
    (run_dir / LOCK_FILE).write_text("")  # created, not yet written
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "since": "2026-12-05 13:00:00"}
    writer = threading.Timer(0.3, lambda: (run_dir / LOCK_FILE).write_text(json.dumps(owner)))
    writer.start()
    refused = pytest.raises(StudyError, match=f"pid {os.getppid()} on {socket.gethostname()}")
    with refused, RunLock(run_dir):
        pass
    writer.join()
    assert json.loads((run_dir / LOCK_FILE).read_text()) == owner  # the owner's, untouched


def test_a_torn_lock_file_is_taken_over_once_it_is_old(tmp_path: Path) -> None:
    from orchestrator.lock import TORN_AFTER_S, RunLock

    run_dir = old_run(tmp_path)
    lock = run_dir / LOCK_FILE
    lock.write_text("")  # its owner was killed between creating and writing it
    past = lock.stat().st_mtime - TORN_AFTER_S - 1
    os.utime(lock, (past, past))
    with RunLock(run_dir):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
