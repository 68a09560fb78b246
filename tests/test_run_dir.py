"""trainables/run_dir.py: the run directory's file names, study.json, Ray's rows, `resolve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables import run_dir
from trainables.contract import StudyRecord
from trainables.run_dir import RunDirError


def test_result_rows_skip_torn_and_foreign_lines() -> None:
    text = '{"epoch": 1, "val_acc": 0.5}\n\n[1, 2]\n{"epoch": 2, "val_acc": 0.6}\n{"epoch": 3, "va'
    rows, bad = run_dir.parse_result_rows(text)
    assert [r["epoch"] for r in rows] == [1, 2] and bad == 2


def test_rows_by_epoch_later_row_wins_and_infeasible_left_out(tmp_path: Path) -> None:
    lines = [
        {"epoch": 0, "infeasible": 1},
        {"epoch": 1, "val_acc": 0.1},
        {"epoch": 2, "val_acc": 0.2},
        {"epoch": 2, "val_acc": 0.3},  # the same epoch again after a resume
    ]
    (tmp_path / run_dir.RESULT_FILE).write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    rows = run_dir.recorded_rows(tmp_path)
    assert sorted(rows) == [1, 2] and rows[2]["val_acc"] == 0.3
    assert run_dir.recorded_rows(tmp_path / "nowhere") == {}


def test_resolve_relative_and_moved_absolute_paths(tmp_path: Path) -> None:
    assert run_dir.resolve(tmp_path, "s1/t_1", "s1") == tmp_path / "s1" / "t_1"
    (tmp_path / "s1" / "t_2").mkdir(parents=True)
    # Recorded on another machine: found by its last component under the stage's folder.
    assert run_dir.resolve(tmp_path, "/elsewhere/runs/x/s1/t_2", "s1") == tmp_path / "s1" / "t_2"


def test_study_json_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"study\.json not found"):
        run_dir.read_study_json(tmp_path)
    run_dir.study_path(tmp_path).write_text("{torn")
    with pytest.raises(RunDirError, match="not valid JSON"):
        run_dir.read_study_json(tmp_path)
    run_dir.study_path(tmp_path).write_text("[]")
    with pytest.raises(RunDirError, match="not the study record"):
        run_dir.read_study_json(tmp_path)
    run_dir.study_path(tmp_path).write_text('{"format": 99, "study": "x"}')
    with pytest.raises(RunDirError, match="format 99"):
        run_dir.load_study_record(tmp_path)


def test_study_record_round_trip(tmp_path: Path) -> None:
    record = StudyRecord(study="demo", trainable="classification", metric="val_acc")
    run_dir.study_path(tmp_path).write_text(json.dumps(record.to_dict()))
    assert run_dir.load_study_record(tmp_path) == record


def test_checkpoints_oldest_first_and_the_replay_folder(tmp_path: Path) -> None:
    for name in ("checkpoint_000002", "checkpoint_000000", "checkpoint_000001", "other"):
        (tmp_path / name).mkdir()
    assert [p.name for p in run_dir.checkpoint_folders(tmp_path)] == [
        "checkpoint_000000",
        "checkpoint_000001",
        "checkpoint_000002",
    ]
    assert run_dir.replay_dir(tmp_path, "3.1-A", "20261205-070000") == (
        tmp_path / "replays" / "3.1-A-20261205-070000"
    )
