"""Where each start of a trial ran, as study.json and the run's timeline record it.

After a node is lost, the retry can find a checkpoint that the lost node wrote but never got
logged by Ray; it then reports that epoch again before training on. That row was trained on the
lost node, so it must not name the retry's node or add to the retry's time (seen in CI: the
retry was recorded on the dead node, tests/test_multinode.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from orchestrator.records import attempts_of
from orchestrator.timeline import TimelineRecorder, read_spans
from trainables.contract import REPORTED_AGAIN

LOST, KEPT = "06a836d42abe", "c72989c5f2a9"


def row(epoch: int, since: int, node: str, **extra: object) -> dict:
    return {
        "epoch": epoch,
        "iterations_since_restore": since,
        "node": node,
        "setup_s": 1.0,
        "started_at": 100.0 + epoch,
        "epoch_time_s": 2.0,
        **extra,
    }


def test_a_retry_is_recorded_on_its_own_node_from_its_first_trained_epoch() -> None:
    plain = [row(1, 1, LOST), row(2, 2, LOST), row(3, 1, KEPT), row(4, 2, KEPT)]
    assert attempts_of(plain) == [
        {"node": LOST, "from_epoch": 1},
        {"node": KEPT, "from_epoch": 3},
    ]
    # Epoch 3 trained and checkpointed on the lost node, but never logged: the retry reports it
    # again (Ray counts it as the retry's first iteration), then trains epoch 4 on.
    again = [
        row(1, 1, LOST),
        row(2, 2, LOST),
        row(3, 1, LOST, **{REPORTED_AGAIN: KEPT}),
        row(4, 2, KEPT),
    ]
    assert attempts_of(again) == [
        {"node": LOST, "from_epoch": 1},
        {"node": KEPT, "from_epoch": 4},
    ]
    # The retry stopped right after reporting it: still a start, on its node, that trained none.
    assert attempts_of(again[:3])[1] == {"node": KEPT, "from_epoch": 4}


def test_the_timeline_counts_an_epoch_reported_again_once(tmp_path: Path) -> None:
    log = tmp_path / "timeline.jsonl"
    recorder = TimelineRecorder(str(log))
    trial = SimpleNamespace(trial_id="t1")
    recorder.on_trial_start(0, [], trial)
    recorder.on_trial_result(0, [], trial, row(3, 1, LOST, **{REPORTED_AGAIN: KEPT}))
    recorder.on_trial_result(0, [], trial, row(4, 2, KEPT))
    recorder.on_trial_complete(0, [], trial)
    (span,) = read_spans(tmp_path)["t1"]
    assert span["node"] == KEPT and span["started_at"] == 104.0
    assert span["epochs"] == 1 and span["train_s"] == 2.0
    assert json.loads(log.read_text())["status"] == "TERMINATED"
