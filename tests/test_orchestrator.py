"""The orchestrator end to end with real Ray on CPU, on synthetic data in real on-disk layouts."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from orchestrator.plan import plan_stage
from orchestrator.run import main, parse_overrides
from orchestrator.study import Stage, Study, StudyError, load_study
from trainables.data import write_lunar, write_tiny_imagenet

TINY_MODEL = {"model": "resnet", "channels": (8, 16), "blocks": (1, 1), "stem": "cifar"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tiny_imagenet(
        root / "tiny-imagenet-200", n_classes=4, train_per_class=30, val_per_class=6
    )
    write_lunar(root / "MOON_SEGMENTATION_BINARY", n=24, size=64)
    return root


@pytest.fixture(autouse=True)
def private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def write_study(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def single_stage_study(folder: Path, name: str, classes: int) -> Path:
    """A one-stage, one-epoch classification study on the synthetic Tiny ImageNet tree."""
    return write_study(
        folder,
        name,
        f"""
        from orchestrator.study import Stage, Study
        study = Study(name={name!r}, trainable="classification",
                      base={{"dataset": "tiny_imagenet", "classes": {classes}, "epochs": 1,
                            "batch_size": 32, **{TINY_MODEL!r}}},
                      stages=[Stage("only", scheduler="fifo")])
    """,
    )


def read_results(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]


# --- validation before Ray starts ---------------------------------------------------------------


def test_missing_study_file_names_the_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search_spaces/no_such_study.py"]) == 2
    err = capsys.readouterr().err
    assert "no_such_study.py" in err and "does not exist" in err


def test_unknown_config_key_is_named_with_valid_keys(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(
        tmp_path,
        "typo",
        f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(name="typo", trainable="classification",
                      base={{"dataset": "tiny_imagenet", "classes": 2, "epochs": 1,
                            **{TINY_MODEL!r}}},
                      stages=[Stage("s1",
                                    space={{"learning_rate": tune.grid_search([0.1, 0.01])}})])
    """,
    )
    code = main([str(study), "--data-root", str(data_root), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert "learning_rate" in err and "valid keys" in err and "'lr'" not in err.split("valid")[0]
    assert "lr" in err.split("valid keys:")[1]


def test_study_file_without_study_object(tmp_path: Path) -> None:
    path = write_study(tmp_path, "empty", "x = 1\n")
    with pytest.raises(StudyError, match="must define `study = Study"):
        load_study(path)


def test_bad_stage_settings_are_rejected() -> None:
    from orchestrator.study import validate_study

    with pytest.raises(StudyError, match=r"scheduler='hyperband'.*asha"):
        validate_study(Study("s", "classification", {}, [Stage("a", scheduler="hyperband")]))
    with pytest.raises(StudyError, match="inherit='nope'"):
        validate_study(Study("s", "classification", {}, [Stage("a"), Stage("b", inherit="nope")]))


def test_set_overrides_parse_literals() -> None:
    assert parse_overrides(["epochs=5", "lr=1e-3", "channels=(8,16)", "optimizer=sgd"]) == {
        "epochs": 5,
        "lr": 1e-3,
        "channels": (8, 16),
        "optimizer": "sgd",
    }
    with pytest.raises(StudyError, match="KEY=VALUE"):
        parse_overrides(["epochs"])


def test_plan_labels_joint_keys_and_infeasible_points() -> None:
    from ray import tune

    study = Study("s", "classification", {}, [], constraints={"max_channels": 16})
    stage = Stage(
        "c",
        label="3.1",
        space={
            ("channels", "blocks"): tune.grid_search([((8, 16), (1, 1)), ((8, 16, 32), (1, 1, 1))])
        },
    )
    base = {"dataset": "tiny_imagenet", "epochs": 1, **TINY_MODEL}
    plan = plan_stage(study, stage, base, {"num_classes": 4, "in_channels": 3})
    assert [p.label for p in plan.points] == ["3.1-A", "3.1-B"]
    assert plan.points[1].config["blocks"] == (1, 1, 1)
    assert plan.points[0].feasible and plan.points[0].params > 0
    assert not plan.points[1].feasible and "32" in plan.points[1].violations[0]
    assert plan.varied_keys == ["channels", "blocks"]


# --- real Ray runs ------------------------------------------------------------------------------


def test_two_stage_study_asha_divergence_inheritance_tensorboard(
    tmp_path: Path, data_root: Path, ray_session: object
) -> None:
    """Stage 1: a good lr first, then hopeless and exploding ones; ASHA must stop one early, the
    exploding one must end as diverged, and stage 2 must start from stage 1's best lr."""
    study = write_study(
        tmp_path,
        "two_stage",
        f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(
            name="two_stage", trainable="classification",
            base={{"dataset": "tiny_imagenet", "classes": 4, "epochs": 4, "batch_size": 32,
                  "optimizer": "sgd", **{TINY_MODEL!r}}},
            asha={{"grace_period": 1, "reduction_factor": 2}},
            constraints={{"max_channels": 64}},
            stages=[
                Stage("lr", label="L", scheduler="asha",
                      space={{"lr": tune.grid_search([0.05, 1e-7, 1e-7, 1e9])}}),
                Stage("act", label="A", space={{"activation": tune.grid_search(["relu", "gelu"]),
                                                "channels": tune.grid_search([(8, 16), (8, 128)])}},
                      evaluate=True),
            ])
    """,
    )
    runs = tmp_path / "runs"
    code = main(
        [
            str(study),
            "--data-root",
            str(data_root),
            "--storage",
            str(runs),
            "--max-concurrent",
            "1",
            "--cpus-per-trial",
            "1",
        ]
    )
    assert code == 0
    record = json.loads((runs / "two_stage" / "study.json").read_text())
    assert record["status"] == "finished"
    lr_stage, act_stage = record["stages"]
    statuses = {t["label"]: t["status"] for t in lr_stage["trials"]}
    assert statuses["L-A"] == "completed"
    assert "asha_stopped" in statuses.values()
    assert statuses["L-D"] == "diverged"
    assert lr_stage["best"]["label"] == "L-A"
    # --max-concurrent 1 still holds with packing: no two trials of the stage overlap.
    spans = sorted(
        (sp["start"], sp["end"]) for t in lr_stage["trials"] for sp in t["timeline"]["spans"]
    )
    assert len(spans) == 4 and all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), spans
    # stage 2 inherited the best lr; the 128-channel point broke the rule and was not trained
    trained = [t for t in act_stage["trials"] if t["status"] != "infeasible"]
    assert len(trained) == 2 and all(t["config"]["lr"] == 0.05 for t in trained)
    infeasible = [t for t in act_stage["trials"] if t["status"] == "infeasible"]
    assert len(infeasible) == 2 and all("128" in t["reason"] for t in infeasible)
    assert all(t["trial_dir"] is None for t in infeasible)
    # every trained trial has its parameter count and a best checkpoint on disk
    for t in trained:
        assert t["params"] > 0
        assert (runs / "two_stage" / t["best_checkpoint"] / "checkpoint.pt").is_file()

    # TensorBoard: archsweep's scalars + HParams, no second stream from Ray's TBX logger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # A-A is L-A's configuration again (relu is the default activation): reused, not retrained
    (reused,) = [t for t in trained if t["reused_from"]]
    assert reused["label"] == "A-A" and reused["reused_from"].startswith("lr/")
    assert reused["timeline"] == {}  # its time belongs to the lr stage's timeline
    trial_dir = runs / "two_stage" / next(t for t in trained if not t["reused_from"])["trial_dir"]
    events = sorted(trial_dir.glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]), size_guidance={"tensors": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train_loss", "val_acc", "lr"} <= set(tags["scalars"])
    assert "ray/tune/val_acc" not in tags["scalars"]
    assert "val/predictions" in tags["images"]
    plugin = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in plugin
    assert b"activation" in plugin["_hparams_/session_start_info"]

    # the evaluated stage wrote the test-set record the report reads
    evaluation = json.loads((runs / "two_stage" / "evaluation" / "act.json").read_text())
    assert evaluation["test_size"] == 24 and 0.0 <= evaluation["metrics"]["test_acc"] <= 1.0
    assert len(evaluation["per_class"]) == 4


def test_a_point_an_earlier_stage_trained_is_reused_not_retrained(
    tmp_path: Path, data_root: Path, ray_session: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Course 3.3-A: the depth stage's blocks=1 point is the width stage's winner itself."""
    study = write_study(
        tmp_path,
        "reuse",
        f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(
            name="reuse", trainable="classification",
            base={{"dataset": "tiny_imagenet", "classes": 4, "epochs": 1, "batch_size": 32,
                  "max_batches": 2, **{TINY_MODEL!r}}},
            stages=[
                Stage("width", label="W",
                      space={{"channels": tune.grid_search([(8, 16), (4, 8)])}}),
                Stage("depth", label="D", space={{"blocks": tune.grid_search([1, 2])}}),
            ])
    """,
    )
    runs = tmp_path / "runs"
    assert main([str(study), "--data-root", str(data_root), "--storage", str(runs)]) == 0
    width, depth = json.loads((runs / "reuse" / "study.json").read_text())["stages"]
    winner = width["best"]
    reused, trained = depth["trials"]
    assert reused["label"] == "D-A" and reused["status"] == "completed"
    assert reused["reused_from"] == f"width/{winner['trial_id']}"
    assert reused["reason"].startswith("reused: width/")
    won = next(t for t in width["trials"] if t["trial_id"] == winner["trial_id"])
    assert reused["best"] == won["best"] and reused["trial_dir"] == won["trial_dir"]
    assert trained["reused_from"] is None and trained["trial_dir"].startswith("depth/")
    assert trained["config"]["blocks"] == 2
    # Only D-B went to Ray: one trial folder in the stage's experiment.
    assert len([p for p in (runs / "reuse" / "depth").iterdir() if p.name.startswith("D-")]) == 1
    assert "D-A: reused: width/" in capsys.readouterr().out


def test_segmentation_backbone_from_classifier_study_freeze_then_unfreeze(
    tmp_path: Path, data_root: Path, ray_session: object
) -> None:
    runs = tmp_path / "runs"
    clf = single_stage_study(tmp_path, "clf", classes=4)
    assert main([str(clf), "--data-root", str(data_root), "--storage", str(runs)]) == 0
    seg = write_study(
        tmp_path,
        "seg",
        """
        from orchestrator.study import FromStudy, Stage, Study
        study = Study(name="seg", trainable="segmentation",
                      base={"dataset": "lunar", "epochs": 3, "batch_size": 8,
                            "model": "unet_backbone", "encoder": FromStudy("clf"),
                            "freeze_schedule": "unfreeze_at", "unfreeze_epoch": 3},
                      stages=[Stage("freeze", scheduler="fifo", evaluate=True)])
    """,
    )
    assert main([str(seg), "--data-root", str(data_root), "--storage", str(runs)]) == 0
    record = json.loads((runs / "seg" / "study.json").read_text())
    (trial,) = record["stages"][0]["trials"]
    assert trial["status"] == "completed", trial["reason"]
    assert trial["config"]["encoder_checkpoint"].endswith(
        json.loads((runs / "clf" / "study.json").read_text())["stages"][0]["best"]["checkpoint"]
    )
    rows = read_results(runs / "seg" / trial["trial_dir"])
    moved = [r["encoder_update_norm"] for r in rows]
    assert moved[0] == 0.0 and moved[1] == 0.0  # frozen in epochs 1-2
    assert moved[2] > 0.0  # unfrozen at epoch 3
    assert {"val_iou", "val_dice", "val_pixel_acc"} <= set(rows[-1])
    evaluation = json.loads((runs / "seg" / "evaluation" / "freeze.json").read_text())
    assert set(evaluation["metrics"]) >= {"test_iou", "test_dice", "test_pixel_acc"}
    samples = np.load(runs / "seg" / "evaluation" / "freeze.npz")
    assert samples["sample_masks_true"].shape == samples["sample_masks_pred"].shape
    assert samples["sample_masks_true"].shape[1:] == (64, 64)
    assert samples["sample_masks_true"].dtype == np.uint8


def test_missing_data_set_says_where_to_put_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(
        tmp_path,
        "seg_missing",
        """
        from orchestrator.study import Stage, Study
        study = Study(name="seg_missing", trainable="segmentation",
                      base={"dataset": "lunar", "epochs": 1, "model": "unet"},
                      stages=[Stage("only")])
    """,
    )
    empty = tmp_path / "no_data"
    empty.mkdir()
    code = main([str(study), "--data-root", str(empty), "--storage", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2
    assert str(empty / "MOON_SEGMENTATION_BINARY") in err and "--data-root" in err


def test_fresh_moves_the_old_run_aside(tmp_path: Path) -> None:
    from orchestrator.run import move_aside

    run_dir = tmp_path / "runs" / "study"
    run_dir.mkdir(parents=True)
    (run_dir / "study.json").write_text("{}")
    moved = move_aside(run_dir)
    assert not run_dir.exists()
    assert (moved / "study.json").read_text() == "{}"
    assert moved.name.startswith("study.old-")


def test_optuna_stage_and_a_failing_trial_do_not_stop_the_study(
    tmp_path: Path, data_root: Path, ray_session: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """Optuna (seeded TPE) proposes lr; in the next stage one trial crashes (its checkpoint file
    does not exist): it is recorded as an error with its traceback, the other trial still runs."""
    study = write_study(
        tmp_path,
        "mixed",
        f"""
        from ray import tune
        from orchestrator.study import Stage, Study
        study = Study(
            name="mixed", trainable="classification",
            base={{"dataset": "tiny_imagenet", "classes": 4, "epochs": 1, "batch_size": 32,
                  "augment": {{"hflip": True, "crop_padding": 4}}, **{TINY_MODEL!r}}},
            stages=[
                Stage("tpe", search="optuna", num_samples=3, scheduler="fifo",
                      space={{"lr": tune.loguniform(1e-4, 1e-1)}}),
                Stage("crash", label="C", scheduler="fifo", space={{
                    ("encoder_checkpoint", "augment"): tune.grid_search([
                        (None, {{}}), ("/nonexistent/checkpoint", {{"hflip": True}})])}}),
            ])
    """,
    )
    runs = tmp_path / "runs"
    code = main([str(study), "--data-root", str(data_root), "--storage", str(runs), "--seed", "3"])
    # Finished, with every result recorded, but a script can tell that a trial failed.
    assert code == 3
    assert "trial C-B failed: FileNotFoundError" in capsys.readouterr().err
    tpe, crash = json.loads((runs / "mixed" / "study.json").read_text())["stages"]
    lrs = [t["config"]["lr"] for t in tpe["trials"]]
    assert len(lrs) == 3 and len(set(lrs)) == 3 and all(1e-4 <= lr <= 1e-1 for lr in lrs)
    statuses = {t["label"]: t["status"] for t in crash["trials"]}
    assert statuses == {"C-A": "completed", "C-B": "error"}
    # A planned dict value replaces the base's dict; it is not merged into it.
    assert [t["config"]["augment"] for t in crash["trials"]] == [{}, {"hflip": True}]
    (error,) = [t for t in crash["trials"] if t["status"] == "error"]
    assert "FileNotFoundError" in error["reason"] and "/nonexistent/checkpoint" in error["reason"]
    assert "loop.py" in error["reason"]  # the traceback, not just the message


def test_resuming_with_other_settings_is_refused(
    tmp_path: Path, data_root: Path, ray_session: object, capsys: pytest.CaptureFixture[str]
) -> None:
    study = single_stage_study(tmp_path, "settings", classes=2)
    args = [str(study), "--data-root", str(data_root), "--storage", str(tmp_path / "runs")]
    assert main([*args, "--smoke"]) == 0
    assert main(args) == 2  # without --smoke: the finished smoke results must not be reused
    err = capsys.readouterr().err
    assert "'smoke': True" in err and "--fresh" in err
    assert main([*args, "--fresh"]) == 0


def test_study_file_mistakes_name_file_and_line(tmp_path: Path) -> None:
    path = write_study(
        tmp_path,
        "bad",
        """
        from orchestrator.study import Stage, Study
        study = Study(name="bad", trainable="classification", base={},
                      stages=[Stage(nmae="typo")])
    """,
    )
    with pytest.raises(StudyError, match=r"bad.py, line 4: TypeError.*nmae"):
        load_study(path)
    path = write_study(
        tmp_path,
        "metric",
        """
        from orchestrator.study import Stage, Study
        study = Study(name="m", trainable="segmentation", base={}, stages=[Stage("a")],
                      metric="val_IoU")
    """,
    )
    with pytest.raises(StudyError, match=r"metric='val_IoU'.*val_iou"):
        load_study(path)


def test_stop_reason_is_asha_only_when_asha_decided() -> None:
    from types import SimpleNamespace

    from orchestrator.records import stop_status

    ok = SimpleNamespace(error=None)
    decision = {"trial_id": "t", "epoch": 2, "value": 0.41}
    assert stop_status(ok, {}, 2, 6, decision, "val_acc") == (
        "asha_stopped",
        "stopped by ASHA after 2 of 6 epochs (val_acc 0.4100 below the rung's cutoff)",
    )
    status, reason = stop_status(ok, {}, 2, 6, None, "val_acc")
    assert status == "stopped" and "without an ASHA decision" in reason
    assert stop_status(ok, {}, 6, 6, None, "val_acc") == ("completed", None)
    assert stop_status(ok, {"diverged": 1, "reason": "nan"}, 1, 6, None, "val_acc")[0] == "diverged"
    status, reason = stop_status(ok, {"early_stopped": 1}, 4, 30, None, "val_iou")
    assert status == "stopped" and reason.startswith("early stopping after 4 of 30 epochs")


# --- resume safety: edited stages, concurrent runs ---------------------------------------------

EDITABLE = """
from ray import tune
from orchestrator.study import Stage, Study
study = Study(name="edit", trainable="classification",
              base={{"dataset": "tiny_imagenet", "classes": 3, "epochs": 1, "batch_size": 32,
                    "max_batches": 1, **{model!r}}},
              stages=[Stage("acts", label="X", space={{"activation": tune.grid_search({grid!r})}})])
"""


def test_edited_stage_is_refused_on_resume_naming_the_change(
    tmp_path: Path, data_root: Path, ray_session: object, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "edit.py"
    study.write_text(textwrap.dedent(EDITABLE.format(model=TINY_MODEL, grid=["relu", "elu"])))
    args = [str(study), "--data-root", str(data_root), "--storage", str(tmp_path / "runs")]
    assert main(args) == 0
    study.write_text(textwrap.dedent(EDITABLE.format(model=TINY_MODEL, grid=["relu"])))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "stage 'acts' ran with another plan" in err
    assert "space.activation" in err and "--fresh" in err
    record = json.loads((tmp_path / "runs" / "edit" / "study.json").read_text())
    assert [t["label"] for t in record["stages"][0]["trials"]] == ["X-A", "X-B"]  # nothing lost


def test_second_run_into_a_held_run_directory_is_refused(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket
    import subprocess
    import sys

    study = single_stage_study(tmp_path, "locked", classes=3)
    run_dir = tmp_path / "runs" / "locked"
    run_dir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    lock = run_dir / ".archsweep.lock"
    lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "since": "t"}))
    args = [str(study), "--data-root", str(data_root), "--storage", str(tmp_path / "runs")]
    try:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"another run (pid {holder.pid} on {socket.gethostname()}" in err
        assert lock.is_file() and not (run_dir / "study.json").exists()
    finally:
        holder.kill()
        holder.wait()
    # Its process gone, the lock is stale: the next run takes it over (and gives it back).
    from orchestrator.lock import RunLock

    with RunLock(run_dir):
        assert json.loads(lock.read_text())["pid"] != holder.pid
    assert not lock.exists()


def test_freeze_schedule_on_a_model_without_encoder_is_a_config_error(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = write_study(
        tmp_path,
        "nofreeze",
        f"""
        from orchestrator.study import Stage, Study
        study = Study(name="nofreeze", trainable="classification",
                      base={{"dataset": "tiny_imagenet", "classes": 3, "epochs": 1,
                            "freeze_schedule": "frozen", **{TINY_MODEL!r}}},
                      stages=[Stage("only")])
    """,
    )
    assert main([str(study), "--data-root", str(data_root), "--storage", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "freeze_schedule='frozen'" in err and "'resnet' has no encoder to freeze" in err


def test_set_of_a_searched_key_warns(capsys: pytest.CaptureFixture[str]) -> None:
    from ray import tune

    from orchestrator.run import warn_shadowed

    study = Study(
        name="w",
        trainable="classification",
        base={},
        stages=[Stage("acts", space={"activation": tune.grid_search(["relu"])}), Stage("other")],
    )
    warn_shadowed(study, {"activation": "gelu", "epochs": 3})
    err = capsys.readouterr().err
    assert "--set activation='gelu' does not apply to stage 'acts'" in err
    assert "epochs" not in err and "'other'" not in err


def test_an_errored_trial_is_named_by_its_telling_line() -> None:
    from orchestrator.run import error_line
    from trainables.contract import TrialRecord

    crash = TrialRecord(status="error", reason="Traceback ...\nValueError: lr=-1 must be > 0")
    assert error_line(crash) == "ValueError: lr=-1 must be > 0"
    # Ray's storage error ends with a documentation URL; the line says what to do instead.
    blind = TrialRecord(
        status="error",
        reason="RuntimeError: Unable to set up cluster storage with the following settings:\n"
        "StorageContext<...>\nSee: https://docs.ray.io/en/latest/train/user-guides/x.html",
        attempts=[{"node": "0123456789ab", "from_epoch": 1}],
    )
    line = error_line(blind)
    assert "not reachable from node 0123456789ab" in line and "s3://BUCKET/runs" in line
