"""The live progress view: trial-side throttling, time to the first line, in-place vs plain
output, the ETA on a recorded board sequence, and one real tiny Tuner run through a board."""

from __future__ import annotations

import io
import pickle
import random
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrator import live_view as view
from orchestrator.live_view import (
    CLEAR_LINE_UP,
    ProgressBoard,
    StageProgress,
    TrialProgress,
    estimate_eta,
)
from trainables import ray_io
from trainables.progress_reporter import ProgressReporter

# --- fakes ---------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeOut(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def fake_plan(name: str = "stage", trials: int = 4, epochs: int = 3) -> Any:
    points = [SimpleNamespace(config={"epochs": epochs}) for _ in range(trials)]
    return SimpleNamespace(
        stage=SimpleNamespace(name=name, search="grid", num_samples=trials),
        feasible=points,
        base={"epochs": epochs},
    )


@dataclass
class FakeTrial:
    trial_id: str
    label: str
    status: str = "PENDING"
    last_result: dict = field(default_factory=dict)

    @property
    def config(self) -> dict:
        return {"label": self.label, "epochs": 3}


def update(label: str, epoch: int = 1, batch: int = 1, rate: float = 50.0) -> dict[str, Any]:
    return {
        "label": label,
        "epoch": epoch,
        "epochs": 3,
        "batch": batch,
        "batches": 100,
        "images": batch * 32,
        "epoch_images": 3200,
        "images_per_s": rate,
        "overhead": 1.0,
    }


# --- the trial side ------------------------------------------------------------------------------


def test_reporter_sends_first_update_at_once_then_at_most_every_2_s() -> None:
    clock, sent = FakeClock(), []
    reporter = ProgressReporter(
        "board",
        "A",
        epochs=3,
        batches=10,
        epoch_images=320,
        clock=clock,
        send=lambda name, u: sent.append((clock.now, name, u)),
    )
    reporter.start_epoch(1)
    for i, t in enumerate([0.1, 0.5, 1.9, 2.1, 2.2, 4.0, 4.2, 9.0], start=1):
        clock.now = t
        reporter(i, 32 * i)
    assert [t for t, _, _ in sent] == [0.1, 2.1, 4.2, 9.0]
    assert all(name == "board" for _, name, _ in sent)
    first = sent[0][2]
    assert (first["label"], first["epoch"], first["batch"], first["batches"]) == ("A", 1, 1, 10)
    # The first epoch's first 3 batches are warm-up: no rate until they are done, then the
    # rate from the end of batch 3 (t = 1.9, 96 images) on.
    assert first["warming_up"] and first["images_per_s"] == 0
    assert sent[1][2]["images_per_s"] == pytest.approx(32 / (2.1 - 1.9))
    assert not sent[1][2]["warming_up"]


def test_reporter_measures_overhead_and_uses_last_rate_at_epoch_start() -> None:
    clock, sent = FakeClock(), []
    reporter = ProgressReporter(
        "b", "A", 3, 10, 320, clock=clock, send=lambda name, u: sent.append(u)
    )
    reporter.start_epoch(1)
    reporter.end_training(images_per_s=40.0, train_time_s=8.0)
    clock.now = 10.0  # 8 s training + 2 s validation/checkpoint
    reporter.start_epoch(2)
    clock.now = 10.5
    reporter(1, 32)  # half a second into the epoch: the last epoch's rate, not warm-up's
    assert sent[-1]["images_per_s"] == 40.0
    assert sent[-1]["overhead"] == pytest.approx(10.0 / 8.0)


def gpu_shaped_updates(epochs: int = 20) -> tuple[list[tuple[float, dict]], float]:
    """A trial as one H200 ran it: 4,500 images a 20-epoch trial, batch 128 (36 batches), the
    first batch at 236 images/s (warm-up), every later one at 10k images/s, 0.1 s validation
    per epoch; the reporter's real throttle. Returns (sent updates with their time, end)."""
    clock, sent = FakeClock(), []
    reporter = ProgressReporter(
        "b", "A", epochs, 36, 4500, clock=clock, send=lambda n, u: sent.append((clock.now, u))
    )
    for epoch in range(1, epochs + 1):
        reporter.start_epoch(epoch)
        started = clock.now
        for batch in range(1, 37):
            images = min(128, 4500 - 128 * (batch - 1))
            clock.now += images / (236.0 if (epoch, batch) == (1, 1) else 10_000.0)
            reporter(batch, min(4500, 128 * batch))
        reporter.end_training(4500 / (clock.now - started), clock.now - started)
        clock.now += 0.1
    return sent, clock.now


def test_eta_survives_a_gpu_warm_up() -> None:
    """The first batch's 236 images/s must not drive the ETA (it said 18.9 min for a 36 s
    stage): the trial says it is warming up, and every later estimate is within 30%."""
    sent, end = gpu_shaped_updates()
    _, first = sent[0]
    assert first["warming_up"] and first["images_per_s"] == 0
    assert estimate_eta([TrialProgress.from_update("a", first)], 0, 20) is None
    later = sent[1:]
    assert len(later) >= 3
    for t, u in later:
        eta = estimate_eta([TrialProgress.from_update("a", u)], 0, 20)
        assert eta is not None and abs(eta - (end - t)) <= 0.3 * (end - t) + 0.5, (t, u, eta)


def test_stage_view_says_warming_up_instead_of_a_wild_eta() -> None:
    sent, _ = gpu_shaped_updates()
    clock, board = FakeClock(), ProgressBoard()
    stage, out = make_view(False, board, clock)
    trials = [FakeTrial("a", "S-A", "RUNNING")]
    board.update("a", sent[0][1])
    clock.now = 5.0
    stage.on_step_end(0, trials)
    assert "ETA warming up" in out.getvalue()
    board.update("a", sent[1][1])
    clock.now = 7.0
    stage.on_step_end(0, trials)
    assert "ETA warming up" not in stage.stage_line()


def test_reporter_without_board_sends_nothing() -> None:
    sent: list = []
    ProgressReporter(None, "A", 1, 1, 1, send=lambda n, u: sent.append(u))(1, 32)
    assert sent == []


def test_progress_outside_ray_is_a_no_op_and_never_raises() -> None:
    ray_io.progress("no-such-board", update("A"))  # bare process: Ray is not started for it
    ray_io.progress(None, update("A"))


def test_every_s_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="every_s=-1"):
        ProgressReporter("b", "A", 1, 1, 1, every_s=-1)


def test_epoch_loop_calls_the_progress_hook(tmp_path: Path, monkeypatch) -> None:
    from trainables.data import DataSpec, load_bundle, write_tiny_imagenet
    from trainables.loop import TrialSetup, run_trial

    root = write_tiny_imagenet(
        tmp_path / "tiny-imagenet-200", n_classes=2, train_per_class=16, val_per_class=4
    )
    bundle = load_bundle(DataSpec("tiny_imagenet", path=root), cache_dir=tmp_path / "cache")
    sent: list = []
    monkeypatch.setattr(ray_io, "progress", lambda name, u: sent.append((name, u)))
    session = ray_io.LocalSession(tmp_path / "trial")
    ray_io.use_local_session(session)
    try:
        config = {
            "dataset": "tiny_imagenet",
            "epochs": 2,
            "batch_size": 8,
            "label": "T-A",
            "model": "resnet",
            "channels": (8, 16),
            "blocks": (1, 1),
            "stem": "cifar",
        }
        run_trial(config, bundle, TrialSetup(task="classification", progress_board="board-x"))
    finally:
        ray_io.use_local_session(None)
    assert sent, "the epoch loop sent no progress update"
    name, first = sent[0]
    assert name == "board-x" and first["label"] == "T-A" and first["epochs"] == 2
    n = len(bundle.train)  # the training split (a validation share is held out)
    assert first["batch"] == 1 and first["epoch_images"] == n and first["batches"] == -(-n // 8)
    # the per-epoch report still carries where and how it ran
    assert all("node" in r and "precision" in r for r in session.reports)


# --- the driver side: first line, in place vs plain ---------------------------------------------


def make_view(tty: bool, board: Any, clock: FakeClock) -> tuple[StageProgress, FakeOut]:
    out = FakeOut(tty)
    return StageProgress(fake_plan(), "val_acc", "max", board=board, clock=clock, out=out), out


def test_first_line_comes_right_after_the_first_board_update() -> None:
    """Trial A starts training at t=40 s; its reporter sends at once; the view polls each
    second from on_step_end, so the first line comes within a poll, far under 30 s."""
    clock, board = FakeClock(), ProgressBoard()
    trials = [FakeTrial("a", "S-A", "RUNNING"), FakeTrial("b", "S-B", "RUNNING")]
    stage, out = make_view(False, board, clock)
    first_line_at = None
    while clock.now < 60 and first_line_at is None:
        clock.now = round(clock.now + 0.1, 1)  # Tune's event loop steps
        if clock.now == 40.0:
            board.update("a", update("S-A"))
        stage.on_step_end(0, trials)
        if out.getvalue():
            first_line_at = clock.now
    assert first_line_at is not None and first_line_at - 40.0 <= view.POLL_EVERY_S
    text = out.getvalue()
    assert "S-A: epoch 1/3, batch 1/100, 50.0 images/s" in text
    assert "[stage] 0/4 finished" in text and "ETA" in text


def drive(stage: StageProgress, board: ProgressBoard, clock: FakeClock, seconds: int) -> list:
    trials = [FakeTrial("a", "S-A", "RUNNING"), FakeTrial("b", "S-B", "RUNNING")]
    for second in range(1, seconds + 1):
        clock.now = float(second)
        board.update("a", update("S-A", batch=second))
        board.update("b", update("S-B", batch=second // 2 + 1, rate=30.0))
        stage.on_step_end(0, trials)
    return trials


def test_tty_view_redraws_in_place() -> None:
    clock, board = FakeClock(), ProgressBoard()
    stage, out = make_view(True, board, clock)
    drive(stage, board, clock, 5)
    text = out.getvalue()
    # 5 blocks of 3 lines (two trials + stage line); each redraw first clears the last block.
    assert text.count("[stage] 0/4 finished") == 5
    assert text.count(CLEAR_LINE_UP * 3) == 4
    assert stage.drawn == 3
    assert text.rstrip("\n").endswith("ETA " + stage.eta())
    # a lasting stage line (a trial ended) replaces the live block instead of piling up
    trials = [FakeTrial("a", "S-A", "TERMINATED", {"epoch": 3, "val_acc": 0.5})]
    stage.on_trial_complete(0, trials, trials[0])
    assert out.getvalue().count(CLEAR_LINE_UP * 3) == 5
    assert "best val_acc 0.5000 (S-A)" in out.getvalue().splitlines()[-1]


def test_plain_view_prints_at_most_every_15_s() -> None:
    clock, board = FakeClock(), ProgressBoard()
    stage, out = make_view(False, board, clock)
    drive(stage, board, clock, 60)
    text = out.getvalue()
    assert "\x1b[" not in text
    blocks = text.count("[stage] 0/4 finished")
    assert blocks == 4  # t = 1 (first update, at once), 16, 31, 46
    assert text.count("S-A: epoch") == blocks and text.count("S-B: epoch") == blocks


def test_finished_trials_leave_the_view() -> None:
    clock, board = FakeClock(), ProgressBoard()
    stage, _ = make_view(False, board, clock)
    board.update("a", update("S-A"))
    clock.now = 2.0
    stage.on_step_end(0, [FakeTrial("a", "S-A", "TERMINATED")])
    assert stage.running == {}


def test_eta_counts_down_while_no_trial_measures_a_rate() -> None:
    """Ray says S-A finished but S-B has not sent its first update: no rate is measured for a
    moment, and the view counts its last estimate down instead of printing "ETA -"."""
    clock, board = FakeClock(), ProgressBoard()
    stage, _ = make_view(False, board, clock)
    trials = drive(stage, board, clock, 5)
    before = stage.eta()
    assert before != "-"
    trials[0].status = "TERMINATED"
    trials[1].status = "PENDING"
    clock.now += 10
    stage.on_step_end(0, trials)
    assert not stage.running
    held = float(stage.eta().split()[0]) * (60 if "min" in stage.eta() else 1)
    start = float(before.split()[0]) * (60 if "min" in before else 1)
    assert held == pytest.approx(max(0.0, start - 10), abs=6)


def test_view_survives_pickling_and_finds_this_process_board(monkeypatch) -> None:
    clock, board = FakeClock(), ProgressBoard()
    stage, _ = make_view(False, board, clock)
    drive(stage, board, clock, 3)
    restored = pickle.loads(pickle.dumps(stage))
    assert restored.board is None and restored.running == {}
    monkeypatch.setitem(view._ACTIVE_BOARDS, "stage", board)  # what run_tuner registers
    out = FakeOut(False)
    restored.out = out
    restored.on_step_end(0, [FakeTrial("a", "S-A", "RUNNING")])
    assert "S-A: epoch 1/3" in out.getvalue()
    trials = [FakeTrial(t, t, "TERMINATED", {"epoch": 3, "val_acc": 0.1}) for t in "abcd"]
    restored.on_experiment_end(trials)
    assert out.getvalue().splitlines()[-1].startswith("[stage] 4/4 finished (completed 4")


def test_bad_board_update_only_costs_its_line() -> None:
    clock, board = FakeClock(), ProgressBoard()
    stage, out = make_view(False, board, clock)
    board.update("a", {"label": "S-A"})  # no epoch etc.
    board.update("b", update("S-B"))
    clock.now = 1.0
    stage.on_step_end(0, [FakeTrial("a", "S-A", "RUNNING"), FakeTrial("b", "S-B", "RUNNING")])
    assert "S-B: epoch" in out.getvalue() and "S-A: epoch" not in out.getvalue()


# --- the ETA on a recorded, quickstart-like sequence ---------------------------------------------


def test_eta_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="unstarted=-1"):
        estimate_eta([TrialProgress.from_update("a", update("A"))], -1, 3)


def test_eta_is_none_before_any_rate() -> None:
    assert estimate_eta([], 4, 3) is None
    assert estimate_eta([TrialProgress.from_update("a", update("A", rate=0.0))], 3, 3) is None


def record_quickstart(seed: int = 0) -> tuple[list[dict[str, Any]], float, float]:
    """A quickstart-like stage in simulated time: 4 trials, 2 at a time, 3 epochs of 4500
    images (batch 32), each trial its own speed, +-15% jitter, faster when alone on the 2 cores,
    8 s start-up, 12% validation/checkpoint time per epoch. The trials' real ProgressReporters
    write to a real ProgressBoard; every second the board's snapshot and the finished count
    are recorded. Returns (records, end time, end of the first trial's first epoch)."""
    rng = random.Random(seed)
    clock, board = FakeClock(), ProgressBoard()
    epochs, images, batch, dt = 3, 4500, 32, 0.25
    base_rates = {"a": 62.0, "b": 55.0, "c": 48.0, "d": 58.0}
    trials: dict[str, dict[str, Any]] = {}
    pending, finished, records, first_epoch_end = list(base_rates), [], [], None
    while pending or trials:
        while pending and len(trials) < 2:
            tid = pending.pop(0)
            reporter = ProgressReporter(
                "board",
                tid.upper(),
                epochs,
                -(-images // batch),
                images,
                clock=clock,
                send=lambda name, u, tid=tid: board.update(tid, u),
            )
            trials[tid] = {"phase": "startup", "left": 8.0, "epoch": 0, "rep": reporter}
        alone = 1.5 if len(trials) == 1 else 1.0
        for tid, t in list(trials.items()):
            t["left"] -= dt
            if t["phase"] == "train":
                rate = base_rates[tid] * alone * rng.uniform(0.85, 1.15)
                t["done"] = min(images, t["done"] + rate * dt)
                t["rep"](int(t["done"] // batch), int(t["done"]))
                if t["done"] >= images:
                    train_s = clock.now + dt - t["train_start"]
                    t["rep"].end_training(images / train_s, train_s)
                    t["phase"], t["left"] = "validate", 0.12 * train_s
                    if first_epoch_end is None:
                        first_epoch_end = clock.now + dt
            elif t["left"] <= 0:
                if t["epoch"] == epochs:
                    finished.append(tid)
                    del trials[tid]
                    continue
                t["epoch"] += 1
                t["rep"].start_epoch(t["epoch"])
                t.update(phase="train", done=0.0, train_start=clock.now + dt)
        clock.now += dt
        if clock.now % 1.0 == 0:
            records.append(
                {
                    "t": clock.now,
                    "snapshot": board.snapshot(),
                    "finished": list(finished),
                    "ray_running": sorted(trials),  # Ray's RUNNING trials, started or not
                }
            )
    return records, clock.now, first_epoch_end


def eta_from_record(record: dict[str, Any], total: int, epochs: int) -> float | None:
    running = [
        TrialProgress.from_update(tid, u)
        for tid, u in record["snapshot"].items()
        if tid in record["ray_running"]
    ]
    starting = len(record["ray_running"]) - len(running)
    unstarted = total - len(record["finished"]) - len(record["ray_running"])
    return estimate_eta(running, unstarted, epochs, starting)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eta_within_30_percent_after_the_first_epoch(seed: int) -> None:
    records, end, first_epoch_end = record_quickstart(seed)
    errors = []
    for record in records:
        left = end - record["t"]
        # After the first epoch; the last 5% of the stage is left out, where any error of a few
        # seconds is a large fraction of what is left.
        if record["t"] < first_epoch_end or left < 0.05 * end:
            continue
        eta = eta_from_record(record, total=4, epochs=3)
        assert eta is not None, f"no ETA at t={record['t']}"
        errors.append(abs(eta - left) / left)
    assert len(errors) > 100
    assert max(errors) <= 0.30, f"worst ETA error {max(errors):.0%}"


def test_eta_before_the_first_epoch_exists_but_later_is_what_counts() -> None:
    records, _, first_epoch_end = record_quickstart(0)
    early = [r for r in records if r["snapshot"] and r["t"] < first_epoch_end]
    # Warming up (no trial past its first 3 batches): no estimate rather than a wild one;
    # from the first measured rate on, an estimate before the first epoch ends.
    measured = [r for r in early if any(u["images_per_s"] > 0 for u in r["snapshot"].values())]
    assert len(measured) < len(early) and measured
    assert all(eta_from_record(r, 4, 3) is not None for r in measured)


# --- one real tiny Tuner run through a board ----------------------------------------------------


def test_real_trials_reach_the_board(ray_session, tmp_path: Path) -> None:
    from ray import tune

    def sleepy_trainable(config: dict) -> None:
        # Defined here and self-contained: Ray pickles it by value (workers cannot import tests).
        import time

        from ray import tune

        from trainables import ray_io

        for batch in range(1, 4):
            step = {"label": config["label"], "epoch": 1, "epochs": 3, "batch": batch}
            step.update(batches=3, images=32 * batch, epoch_images=96, images_per_s=20.0)
            ray_io.progress(config["board"], step)
            time.sleep(1.0)
        tune.report({"epoch": 1, "val_acc": 0.5})

    board = view.create_board("real")
    assert board is not None
    out = FakeOut(False)
    stage = StageProgress(fake_plan("real", trials=2, epochs=1), "val_acc", "max", out=out)
    try:
        tune.Tuner(
            tune.with_resources(sleepy_trainable, {"cpu": 1}),
            param_space={"label": tune.grid_search(["R-A", "R-B"]), "board": board.name},
            tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, callbacks=[stage]),
        ).fit()
    finally:
        view.close_board("real")
    text = out.getvalue()
    assert "R-A: epoch 1/3, batch" in text or "R-B: epoch 1/3, batch" in text, text
    assert text.splitlines()[-1].startswith("[real] 2/2 finished (completed 2")
