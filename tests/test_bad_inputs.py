"""Bad inputs a new user makes: each exits 2 (or the code given) with a message, never a traceback.

One table, `CASES`, of (id, argv-or-callable, expected exit code, message fragment):

- argv (a list of strings): `orchestrator.run.main(argv)` in this process. "{tmp}" in an item
  becomes the case's own temporary folder.
- a callable `f(tmp: Path) -> int`: sets up files in `tmp` and returns the exit code of whatever
  entry point it calls (`orchestrator.run.main`, `analysis.report.main`); it may assert more.

The fragment must appear in stdout or stderr (errors go to stderr); no case may print a
traceback.

Study-file mistakes must fail before Ray starts and before study.json is written, so these cases
run in a second or less; the few that need Ray are listed in `NEEDS_RAY` and get the session Ray.
To add a case, append a row.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import write_classification_run

import analysis.report as report
import orchestrator.run as run
import trainables.data.cache as cache_mod
from trainables.data.decode import Pool, Source
from trainables.data.errors import DataWarning

Runner = list[str] | Callable[[Path], int]

# A valid classification base: tiny model, the shared Tiny ImageNet subset's layout.
BASE = {
    "dataset": "tiny_imagenet",
    "classes": 2,
    "epochs": 1,
    "batch_size": 32,
    "model": "resnet",
    "channels": (8, 16),
    "blocks": (1, 1),
    "stem": "cifar",
}


def study_source(
    *, pre: str = "", base: str | None = None, stages: str = '[Stage("s1")]', **fields: str
) -> str:
    """A study file's text; every argument is Python source put in place of the default."""
    extra = "".join(f", {k}={v}" for k, v in fields.items())
    return (
        "from ray import tune\n"
        "from orchestrator.study import FromStudy, Stage, Study\n"
        f"{pre}\n"
        f'study = Study(name="bad", trainable="classification", base={base or repr(BASE)}, '
        f"stages={stages}{extra})\n"
    )


def study(*args_after: str, source: str | None = None, **kw: str) -> Callable[[Path], int]:
    """A case that writes a study file (`study_source(**kw)` or `source`) and runs it."""

    def go(tmp: Path) -> int:
        path = tmp / "bad_study.py"
        path.write_text(source if source is not None else study_source(**kw))
        return run.main([str(path), *common_args(tmp), *args_after])

    return go


def common_args(tmp: Path) -> list[str]:
    empty = tmp / "data"
    empty.mkdir(exist_ok=True)
    return ["--storage", str(tmp / "runs"), "--data-root", str(empty)]


def stage_space(space: str, **stage_kw: str) -> str:
    extra = "".join(f", {k}={v}" for k, v in stage_kw.items())
    return f'[Stage("s1", space={space}{extra})]'


def with_base(**changes: object) -> str:
    return repr({**BASE, **changes})


# --- callables for cases that need files beyond a study file ------------------------------------


def study_dir(tmp: Path) -> int:
    (tmp / "studies").mkdir()
    return run.main([str(tmp / "studies"), *common_args(tmp)])


def truncated_resume(tmp: Path) -> int:
    """A run directory whose study.json was cut off mid-write (copied, disk full, ...)."""
    run_dir = tmp / "runs" / "bad"
    run_dir.mkdir(parents=True)
    (run_dir / "study.json").write_text('{"format": 2, "study": "bad", "stag')
    return study()(tmp)


def from_study_truncated(tmp: Path) -> int:
    """A FromStudy target whose study.json is truncated."""
    clf = tmp / "runs" / "clf"
    clf.mkdir(parents=True)
    (clf / "study.json").write_text('{"format": 2, "study": "clf", "stages": [{"na')
    source = (
        "from orchestrator.study import FromStudy, Stage, Study\n"
        'study = Study(name="seg", trainable="segmentation",\n'
        '              base={"dataset": "lunar", "epochs": 1, "model": "unet_backbone",\n'
        '                    "encoder": FromStudy("clf")},\n'
        '              stages=[Stage("s1")])\n'
    )
    return study(source=source)(tmp)


def report_run(tmp: Path) -> Path:
    return write_classification_run(tmp / "run")


def report_truncated_npz(tmp: Path) -> int:
    """evaluate.py's .npz cut off mid-write: the report is still written, with a note saying so."""
    run_dir = report_run(tmp)
    npz = next((run_dir / "evaluation").glob("*.npz"))
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    code = report.main([str(run_dir), "--out", str(tmp / "out")])
    assert f"{npz.name} unreadable" in (tmp / "out" / "report.md").read_text()
    return code


def report_out_under_file(tmp: Path) -> int:
    run_dir = report_run(tmp)
    (tmp / "afile").write_text("x")
    return report.main([str(run_dir), "--out", str(tmp / "afile" / "report")])


def report_out_is_file(tmp: Path) -> int:
    run_dir = report_run(tmp)
    (tmp / "afile").write_text("x")
    return report.main([str(run_dir), "--out", str(tmp / "afile")])


def report_out_user_folder(tmp: Path) -> int:
    run_dir = report_run(tmp)
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.md").write_text("mine")
    return report.main([str(run_dir), "--out", str(tmp / "mine")])


def report_study_json(edit: Callable[[dict], object]) -> Callable[[Path], int]:
    """A report of a run whose study.json was edited by `edit(record)` (in place)."""

    def go(tmp: Path) -> int:
        run_dir = report_run(tmp)
        path = run_dir / "study.json"
        record = json.loads(path.read_text())
        edit(record)
        path.write_text(json.dumps(record))
        return report.main([str(run_dir), "--out", str(tmp / "out")])

    return go


def report_truncated_study_json(tmp: Path) -> int:
    run_dir = report_run(tmp)
    path = run_dir / "study.json"
    path.write_text(path.read_text()[:200])
    return report.main([str(run_dir), "--out", str(tmp / "out")])


def report_missing_run_dir(tmp: Path) -> int:
    return report.main([str(tmp / "no_run"), "--out", str(tmp / "out")])


def first_trial(record: dict) -> dict:
    return next(s for s in record["stages"] if s["trials"])["trials"][0]


CASES: list[tuple[str, Runner, int, str]] = [
    # --- the study file itself --------------------------------------------------------------
    ("study-missing", ["{tmp}/no_such_study.py"], 2, "does not exist"),
    ("study-is-directory", study_dir, 2, "is a directory"),
    ("study-no-object", study(source="x = 1\n"), 2, "must define `study = Study"),
    ("study-wrong-type", study(source="study = {'name': 'x'}\n"), 2, "found dict"),
    ("study-syntax-error", study(source="study = Study(\n"), 2, "SyntaxError"),
    ("study-name-error", study(source="study = Stduy()\n"), 2, "NameError"),
    ("study-sys-exit-0", study(pre="import sys\nsys.exit(0)"), 2, "sys.exit(0)"),
    ("study-sys-exit-none", study(pre="import sys\nsys.exit()"), 2, "sys.exit(None)"),
    ("study-stage-kwarg-typo", study(stages='[Stage(nmae="s1")]'), 2, "nmae"),
    (
        "study-name-not-str",
        study(source=study_source().replace('name="bad"', "name=5")),
        2,
        "name=5 must be a non-empty string",
    ),
    (
        "study-trainable",
        study(source=study_source().replace('"classification"', '"detection"')),
        2,
        "trainable='detection' is not valid",
    ),
    ("stages-not-list", study(stages='Stage("s1")'), 2, "must be a list of Stage"),
    ("stages-empty", study(stages="[]"), 2, "has no stages"),
    ("stages-item-not-stage", study(stages='["s1"]'), 2, "stages[0] is str"),
    ("base-list", study(base="[1, 2, 3]"), 2, "base=[1, 2, 3] must be a dict"),
    (
        "space-list",
        study(stages='[Stage("s1", space=["lr", 0.1])]'),
        2,
        "space=['lr', 0.1] must be a dict",
    ),
    ("config-list", study(stages='[Stage("s1", config=[1])]'), 2, "config=[1] must be a dict"),
    ("stage-name-int", study(stages="[Stage(42)]"), 2, "stage name 42 must be a string"),
    ("stage-name-slash", study(stages='[Stage("a/b")]'), 2, "'a/b' must be letters"),
    ("stage-name-duplicate", study(stages='[Stage("s1"), Stage("s1")]'), 2, "used twice"),
    ("stage-name-reserved", study(stages='[Stage("evaluation")]'), 2, "reserved"),
    ("stage-title-int", study(stages='[Stage("s1", title=5)]'), 2, "title=5 must be a string"),
    (
        "stage-evaluate-str",
        study(stages='[Stage("s1", evaluate="yes")]'),
        2,
        "evaluate='yes' must be True or False",
    ),
    (
        "stage-scheduler",
        study(stages='[Stage("s1", scheduler="hyperband")]'),
        2,
        "scheduler='hyperband' is not valid",
    ),
    (
        "stage-search",
        study(stages='[Stage("s1", search="bayes")]'),
        2,
        "search='bayes' is not valid",
    ),
    (
        "stage-num-samples-0",
        study(stages='[Stage("s1", num_samples=0)]'),
        2,
        "num_samples=0 must be an integer >= 1",
    ),
    ("stage-num-samples-str", study(stages='[Stage("s1", num_samples="3")]'), 2, "num_samples='3'"),
    (
        "inherit-later-stage",
        study(stages='[Stage("s1", inherit="s2"), Stage("s2")]'),
        2,
        "inherit='s2' is not valid",
    ),
    (
        "inherit-unknown",
        study(stages='[Stage("s1"), Stage("s2", inherit="nope")]'),
        2,
        "inherit='nope'",
    ),
    ("metric-unknown", study(metric='"val_accuracy"'), 2, "metric='val_accuracy'"),
    ("mode-unknown", study(mode='"maximize"'), 2, "mode='maximize' is not valid"),
    (
        "asha-reduction-1",
        study(asha='{"reduction_factor": 1}'),
        2,
        "reduction_factor=1 must be a number >= 2",
    ),
    ("asha-grace-0", study(asha='{"grace_period": 0}'), 2, "grace_period=0 must be an integer"),
    ("asha-grace-str", study(asha='{"grace_period": "two"}'), 2, "grace_period='two'"),
    ("asha-unknown-key", study(asha='{"grace": 2}'), 2, "unknown asha setting(s) ['grace']"),
    ("asha-not-dict", study(asha="3"), 2, "asha=3 must be a dict"),
    (
        "optuna-empty-space",
        study(stages='[Stage("s1", search="optuna")]'),
        2,
        "search='optuna' needs at least one sampled dimension",
    ),
    (
        "optuna-with-grid",
        study(stages=stage_space('{"lr": tune.grid_search([0.1])}', search='"optuna"')),
        2,
        "cannot take tune.grid_search",
    ),
    (
        "constraint-typo",
        study(constraints='{"max_parms": 5_000_000}'),
        2,
        "unknown constraint rule(s) ['max_parms']; valid rules: max_params",
    ),
    ("constraints-not-dict", study(constraints='["max_params"]'), 2, "must be a dict of rules"),
    (
        "from-study-bad-take",
        study(pre='ref = FromStudy("x", take="weights")'),
        2,
        "choose take from",
    ),
    # --- the stages' config keys and values ---------------------------------------------------
    (
        "grid-empty",
        study(stages=stage_space('{"lr": tune.grid_search([])}')),
        2,
        "stage 's1': 'lr': tune.grid_search([]) is empty",
    ),
    (
        "grid-not-list",
        study(stages=stage_space('{"lr": tune.grid_search(0.1)}')),
        2,
        "needs a list of values",
    ),
    (
        "grid-joint-length",
        study(stages=stage_space('{("channels", "blocks"): tune.grid_search([((8, 16),)])}')),
        2,
        "must have 2 items",
    ),
    (
        "unknown-key-space",
        study(stages=stage_space('{"learning_rate": tune.grid_search([1])}')),
        2,
        "unknown config key(s) ['learning_rate']",
    ),
    ("unknown-key-base", study(base=with_base(epoch=3)), 2, "unknown config key(s) ['epoch']"),
    ("unknown-key-stage-config", study(stages='[Stage("s1", config={"lrr": 0.1})]'), 2, "['lrr']"),
    (
        "unknown-key-second-stage",
        study(stages='[Stage("s1"), Stage("s2", space={"dropuot": tune.grid_search([0.1])})]'),
        2,
        "stage 's2'",
    ),
    (
        "varied-data-key",
        study(stages=stage_space('{"classes": tune.grid_search([2, 3])}')),
        2,
        "varies data key(s) ['classes']",
    ),
    (
        "activation-grid",
        study(stages=stage_space('{"activation": tune.grid_search(["relu", "gleu"])}')),
        2,
        "'gleu'",
    ),
    ("activation-base", study(base=with_base(activation="swish2")), 2, "'swish2'"),
    ("channels-zero", study(base=with_base(channels=(0, 16))), 2, "channels"),
    (
        "model-unknown",
        study(base=with_base(model="resnet50x")),
        2,
        "model='resnet50x' is not a model family",
    ),
    (
        "dataset-unknown",
        study(base=with_base(dataset="imagenet21k")),
        2,
        "dataset='imagenet21k' is not a data set",
    ),
    ("epochs-0", study(base=with_base(epochs=0)), 2, "epochs=0 must be a positive integer"),
    ("epochs-negative", study(base=with_base(epochs=-3)), 2, "epochs=-3"),
    ("epochs-str", study(base=with_base(epochs="ten")), 2, "epochs='ten'"),
    ("epochs-0-smoke", study("--smoke", base=with_base(epochs=0)), 2, "epochs=0"),
    ("epochs-negative-smoke", study("--smoke", base=with_base(epochs=-3)), 2, "epochs=-3"),
    ("epochs-str-smoke", study("--smoke", base=with_base(epochs="ten")), 2, "epochs='ten'"),
    (
        "epochs-stage-config-smoke",
        study("--smoke", stages='[Stage("s1", config={"epochs": 0})]'),
        2,
        "epochs=0",
    ),
    ("lr-negative", study(base=with_base(lr=-1)), 2, "lr=-1 must be a positive number"),
    ("lr-str", study(base=with_base(lr="fast")), 2, "lr='fast'"),
    ("batch-size-0", study(base=with_base(batch_size=0)), 2, "batch_size=0"),
    ("optimizer-unknown", study(base=with_base(optimizer="adamm")), 2, "optimizer='adamm'"),
    ("loss-wrong-task", study(base=with_base(loss="dice")), 2, "loss='dice'"),
    # --- --set -------------------------------------------------------------------------------
    ("set-without-equals", study("--set", "epochs"), 2, "must look like KEY=VALUE"),
    ("set-unknown-key", study("--set", "epoch=3"), 2, "unknown config key(s) ['epoch']"),
    ("set-epochs-0", study("--set", "epochs=0"), 2, "epochs=0"),
    ("set-epochs-0-smoke", study("--smoke", "--set", "epochs=0"), 2, "epochs=0"),
    # --- run directories, references, data ----------------------------------------------------
    ("resume-truncated-study-json", truncated_resume, 2, "study.json"),
    ("from-study-truncated-json", from_study_truncated, 2, "study.json"),
    ("data-folder-missing", study(), 2, "--data-root"),
    # --- the report ---------------------------------------------------------------------------
    ("report-missing-run-dir", report_missing_run_dir, 2, "does not exist"),
    ("report-truncated-npz", report_truncated_npz, 0, "report written"),
    ("report-out-not-writable", report_out_under_file, 2, "cannot write the report"),
    ("report-out-is-file", report_out_is_file, 2, "is a file"),
    ("report-out-user-folder", report_out_user_folder, 2, "new or empty folder"),
    ("report-truncated-study-json", report_truncated_study_json, 2, "study.json"),
    ("report-stages-str", report_study_json(lambda r: r.update(stages="x")), 2, "stages"),
    ("report-metric-int", report_study_json(lambda r: r.update(metric=5)), 2, "metric"),
    (
        "report-trials-dict",
        report_study_json(lambda r: r["stages"][0].update(trials={})),
        2,
        "trials",
    ),
    (
        "report-params-str",
        report_study_json(lambda r: first_trial(r).update(params="many")),
        2,
        "params",
    ),
    (
        "report-epochs-run-str",
        report_study_json(lambda r: first_trial(r).update(epochs_run="ten")),
        2,
        "epochs_run",
    ),
    # --- the command line and the driver ---
    ("cli-cpus-zero", study("--cpus-per-trial", "0"), 2, "0 must be > 0"),
    ("cli-cpus-negative", study("--cpus-per-trial=-1"), 2, "-1 must be > 0"),
    ("cli-gpus-negative", study("--gpus-per-trial=-0.5"), 2, "-0.5 must be >= 0"),
    ("cli-max-concurrent-negative", study("--max-concurrent=-1"), 2, "-1 must be >= 0"),
    ("cli-cpus-not-a-number", study("--cpus-per-trial", "two"), 2, "'two' is not a number"),
    ("cli-name-escapes-storage", study("--name", "../.."), 2, "must be a plain folder name"),
    ("cli-storage-is-a-file", lambda tmp: storage_is_file(tmp), 2, "is a file"),
    ("cli-storage-unknown-scheme", study("--storage", "ftp://host/runs"), 2, "unknown scheme"),
    ("cli-address-unreachable", study("--address", "127.0.0.1:1"), 2, "no Ray head answers"),
    ("cli-budget-unknown", study("--budget", "huge"), 2, "invalid choice: 'huge'"),
    ("cli-scheduler-unknown", study("--scheduler", "pbt"), 2, "invalid choice: 'pbt'"),
    ("run-dir-locked", lambda tmp: locked_run(tmp), 2, "another run (pid"),
    (
        "cli-cpus-beyond-machine",
        lambda tmp: with_data(tmp, "--cpus-per-trial", "64"),
        2,
        "trials can never start: 64 CPU per trial",
    ),
    (
        "cli-gpus-without-gpu",
        lambda tmp: with_data(tmp, "--gpus-per-trial", "1"),
        2,
        "1 GPU per trial, cluster has 0",
    ),
]


def storage_is_file(tmp: Path) -> int:
    (tmp / "runs").write_text("not a folder")
    return study()(tmp)


def locked_run(tmp: Path) -> int:
    """A live process (this one) holds the run directory."""
    import socket

    run_dir = tmp / "runs" / "bad"
    run_dir.mkdir(parents=True)
    (run_dir / ".archsweep.lock").write_text(
        json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": "now"})
    )
    return study()(tmp)


def with_data(tmp: Path, *args: str) -> int:
    """A runnable study on real-layout data, with a resource request no node can meet."""
    from trainables.data import write_tiny_imagenet

    write_tiny_imagenet(
        tmp / "data" / "tiny-imagenet-200", n_classes=2, train_per_class=8, val_per_class=2
    )
    return study(*args)(tmp)


# --- issue 21: the second adversarial pass ------------------------------------------------------
# Each row was run on the code before issue 21 too (its report has the table: before -> after).


def mnist_study(tmp: Path, damage: Callable[[Path], object]) -> int:
    """A runnable MNIST study whose idx files `damage(raw_dir)` then spoils."""
    from trainables.data import write_mnist

    write_mnist(tmp / "data", train_per_class=4, test_per_class=2)
    damage(tmp / "data" / "MNIST" / "raw")
    return study(base=with_base(dataset="mnist"))(tmp)


def _rewrite(path: Path, edit: Callable[[bytes], bytes]) -> None:
    path.write_bytes(edit(path.read_bytes()))


def bad_magic(raw: Path) -> None:
    _rewrite(raw / "train-images-idx3-ubyte", lambda b: b"\x1f\x8b\x08\x03" + b[4:])


def truncated_labels(raw: Path) -> None:
    _rewrite(raw / "train-labels-idx1-ubyte", lambda b: b[: len(b) // 2])


def truncated_header(raw: Path) -> None:
    _rewrite(raw / "t10k-images-idx3-ubyte", lambda b: b[:6])


def empty_idx(raw: Path) -> None:
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"")


def fewer_labels(raw: Path) -> None:
    from trainables.data.idx import write_idx

    write_idx(raw / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))


def tiny_imagenet_without(tmp: Path, name: str) -> int:
    from trainables.data import write_tiny_imagenet

    folder = tmp / "data" / "tiny-imagenet-200"
    write_tiny_imagenet(folder, n_classes=2, train_per_class=4, val_per_class=2)
    (folder / name).unlink()
    return study()(tmp)


def tiny_imagenet_empty_wnids(tmp: Path) -> int:
    from trainables.data import write_tiny_imagenet

    folder = tmp / "data" / "tiny-imagenet-200"
    write_tiny_imagenet(folder, n_classes=2, train_per_class=4, val_per_class=2)
    (folder / "wnids.txt").write_text("\n")
    return study()(tmp)


def serve(tmp: Path, answer: bytes | None) -> int:
    """A TCP server on 127.0.0.1 that sends `answer` to each client (None: stays silent)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.sendall(answer)

    threading.Thread(target=accept, daemon=True).start()
    try:
        started = time.monotonic()
        code = study("--address", f"127.0.0.1:{port}")(tmp)
        assert time.monotonic() - started < 30, "the address check took too long"
        return code
    finally:
        server.close()
        for conn in held:
            conn.close()


def fresh_on_live_run(tmp: Path) -> int:
    import socket

    run_dir = tmp / "runs" / "bad"
    run_dir.mkdir(parents=True)
    (run_dir / "study.json").write_text("{}")
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "since": "now"}
    (run_dir / ".archsweep.lock").write_text(json.dumps(owner))
    code = study("--fresh")(tmp)
    assert (run_dir / "study.json").is_file(), "the live run's folder was moved"
    return code


def fresh_twice_in_one_second(tmp: Path) -> int:
    from trainables.storage import Location

    run_dir = tmp / "runs" / "bad"
    for n in range(2):
        run_dir.mkdir(parents=True)
        (run_dir / "study.json").write_text(str(n))
        run.fresh_start(Location(str(run_dir)))
    kept = sorted(p.read_text() for p in run_dir.parent.glob("bad.old-*/study.json"))
    assert kept == ["0", "1"], kept
    return study()(tmp)  # then the run itself: no data here, exit 2 naming --data-root


def other_study_in_folder(tmp: Path) -> int:
    """runs/bad holds study 'first'; a study named 'bad' with the same plan must not adopt it."""
    run_dir = tmp / "runs" / "bad"
    run_dir.mkdir(parents=True)
    record = {
        "format": 2,
        "study": "first",
        "trainable": "classification",
        "metric": "val_acc",
        "mode": "max",
        "status": "finished",
        "stages": [],
    }
    (run_dir / "study.json").write_text(json.dumps(record))
    return study()(tmp)


def report_into_live_run(tmp: Path) -> int:
    import socket

    run_dir = report_run(tmp)
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "since": "now"}
    (run_dir / ".archsweep.lock").write_text(json.dumps(owner))
    code = report.main([str(run_dir)])
    assert not (run_dir / "report").exists(), "the report wrote into a live run"
    return code


def replay_without_data(tmp: Path) -> int:
    from orchestrator.replay import main as replay_main

    run_dir = report_run(tmp)
    record = json.loads((run_dir / "study.json").read_text())
    record["data"]["data_root"] = str(tmp / "gone")
    (run_dir / "study.json").write_text(json.dumps(record))
    empty = tmp / "empty"
    empty.mkdir()
    label = first_trial(record)["label"]
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        return replay_main(
            [str(run_dir), label, "--data-root", str(empty), "--out", str(tmp / "o")]
        )
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def replay_into_live_run(tmp: Path) -> int:
    import socket

    from orchestrator.replay import main as replay_main

    run_dir = report_run(tmp)
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "since": "now"}
    (run_dir / ".archsweep.lock").write_text(json.dumps(owner))
    record = json.loads((run_dir / "study.json").read_text())
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:  # replay hides CUDA from the process it runs in; this is the test's process
        code = replay_main([str(run_dir), first_trial(record)["label"]])
    finally:
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before
    assert not (run_dir / "replays").exists(), "the replay wrote into a live run"
    return code


def space(dimension: str) -> Callable[[Path], int]:
    return study(stages=stage_space(f'{{"lr": {dimension}}}'))


CASES += [
    # CLI numbers: nan compares false with every bound (it hung Ray), inf, bool, range
    ("cli21-cpus-nan", study("--cpus-per-trial", "nan"), 2, "'nan' is not a finite number"),
    ("cli21-gpus-nan", study("--gpus-per-trial", "nan"), 2, "'nan' is not a finite number"),
    ("cli21-cpus-inf", study("--cpus-per-trial", "inf"), 2, "'inf' is not a finite number"),
    ("cli21-gpus-inf", study("--gpus-per-trial", "inf"), 2, "'inf' is not a finite number"),
    ("cli21-cpus-minus-inf", study("--cpus-per-trial=-inf"), 2, "is not a finite number"),
    ("cli21-cpus-overflow", study("--cpus-per-trial", "1e400"), 2, "is not a finite number"),
    ("cli21-cpus-bool", study("--cpus-per-trial", "True"), 2, "'True' is not a number"),
    ("cli21-max-concurrent-nan", study("--max-concurrent", "nan"), 2, "is not an integer"),
    ("cli21-max-concurrent-fraction", study("--max-concurrent", "1.5"), 2, "is not an integer"),
    ("cli21-seed-negative", study("--seed=-1"), 2, "-1 must be >= 0"),
    ("cli21-seed-too-big", study("--seed", str(2**32)), 2, "must be <= 4294967295"),
    ("cli21-seed-nan", study("--seed", "nan"), 2, "'nan' is not an integer"),
    ("cli21-gpus-fraction-above-1", study("--gpus-per-trial", "1.5"), 2, "whole number of GPUs"),
    ("cli21-cpus-below-ray-unit", study("--cpus-per-trial", "1e-9"), 2, "resource unit 0.0001"),
    # names and paths
    ("cli21-name-too-long", study("--name", "x" * 300), 2, "--name is 300 bytes long"),
    ("cli21-name-empty", study("--name", ""), 2, "must be a plain folder name"),
    (
        "cli21-study-file-empty-path",
        lambda tmp: run.main(["", *common_args(tmp)]),
        2,
        "study file '' is empty",
    ),
    ("cli21-study-file-is-json", study(source='{"study": 1}\n'), 2, "must define `study"),
    # search spaces with nothing to try
    ("space21-choice-empty", space("tune.choice([])"), 2, "tune.choice([]) has no choices"),
    ("space21-randint-empty", space("tune.randint(3, 3)"), 2, "holds no integer"),
    ("space21-randint-reversed", space("tune.randint(5, 2)"), 2, "holds no integer"),
    ("space21-lograndint-empty", space("tune.lograndint(1, 1)"), 2, "holds no integer"),
    ("space21-uniform-reversed", space("tune.uniform(0.5, 0.1)"), 2, "is empty or not finite"),
    ("space21-grid-empty", space("tune.grid_search([])"), 2, "tune.grid_search([]) is empty"),
    (
        "space21-optuna-choice-empty",
        study(
            stages='[Stage("s1", search="optuna", num_samples=2, space={"lr": tune.choice([])})]'
        ),
        2,
        "has no choices",
    ),
    # addresses: within seconds, never Ray's endless "Failed to connect to GCS"
    (
        "addr21-http-server",
        lambda tmp: serve(tmp, b"HTTP/1.1 200 OK\r\n\r\nhello"),
        2,
        "no Ray head answers",
    ),
    ("addr21-silent-server", lambda tmp: serve(tmp, None), 2, "--address 127.0.0.1:"),
    ("addr21-no-port", study("--address", "127.0.0.1"), 2, "must be HOST:PORT"),
    ("addr21-port-out-of-range", study("--address", "127.0.0.1:99999"), 2, "port 1-65535"),
    ("addr21-no-host", study("--address", ":6379"), 2, "must be HOST:PORT"),
    (
        "addr21-unknown-host",
        study("--address", "nosuchhost.invalid:6379"),
        2,
        "no Ray head answers",
    ),
    # data errors named with the file, the cause and the fix
    ("data21-mnist-bad-magic", lambda tmp: mnist_study(tmp, bad_magic), 2, "magic number"),
    (
        "data21-mnist-truncated-labels",
        lambda tmp: mnist_study(tmp, truncated_labels),
        2,
        "train-labels-idx1-ubyte is truncated",
    ),
    (
        "data21-mnist-truncated-header",
        lambda tmp: mnist_study(tmp, truncated_header),
        2,
        "t10k-images-idx3-ubyte",
    ),
    ("data21-mnist-empty-file", lambda tmp: mnist_study(tmp, empty_idx), 2, "empty file"),
    (
        "data21-mnist-label-count",
        lambda tmp: mnist_study(tmp, fewer_labels),
        2,
        "but train-labels-idx1-ubyte 3 labels",
    ),
    (
        "data21-tin-no-wnids",
        lambda tmp: tiny_imagenet_without(tmp, "wnids.txt"),
        2,
        "has train/ but not the class list wnids.txt",
    ),
    ("data21-tin-empty-wnids", tiny_imagenet_empty_wnids, 2, "lists no class"),
    # the run lock
    ("lock21-fresh-on-live-run", fresh_on_live_run, 2, "another run (pid"),
    ("lock21-fresh-twice-one-second", fresh_twice_in_one_second, 2, "--data-root"),
    ("lock21-other-study-same-folder", other_study_in_folder, 2, "holds study 'first'"),
    ("lock21-report-into-live-run", report_into_live_run, 2, "report when it has finished"),
    ("lock21-replay-into-live-run", replay_into_live_run, 2, "replay into another folder"),
    # replay (report --out's manifest: tests/test_report_out.py, the exact sequence)
    ("replay21-data-missing", replay_without_data, 2, "the run's data must be readable"),
]


# Cases whose check needs the cluster's resources (Ray is up when they are refused).
NEEDS_RAY = {"cli-cpus-beyond-machine", "cli-gpus-without-gpu"}


def run_case(runner: Runner, tmp: Path) -> int:
    """The case's exit code; argparse's SystemExit counts as one."""
    try:
        if callable(runner):
            return runner(tmp)
        return run.main([item.replace("{tmp}", str(tmp)) for item in runner])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


@pytest.mark.parametrize(
    ("case_id", "runner", "code", "fragment"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(
    case_id: str,
    runner: Runner,
    code: int,
    fragment: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ray

    monkeypatch.setenv("ARCHSWEEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # nothing a case writes lands in the repository
    if case_id in NEEDS_RAY:
        request.getfixturevalue("ray_session")
    ray_was_up = ray.is_initialized()
    got = run_case(runner, tmp_path)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, f"{case_id}: traceback instead of a message:\n{err}"
    assert got == code, f"{case_id}: exit {got}, expected {code}; stderr:\n{err}"
    assert fragment in out + err, f"{case_id}: {fragment!r} not in the output:\n{out}{err}"
    if case_id not in NEEDS_RAY and not ray_was_up:
        assert not ray.is_initialized(), f"{case_id}: Ray started before the input was checked"
    # A run that failed validation leaves no study.json that would block the corrected command.
    if case_id.startswith(("study-", "stage", "grid-", "unknown-", "epochs-", "set-", "asha-")):
        assert not list((tmp_path / "runs").glob("*/study.json")), f"{case_id}: wrote study.json"


def test_cases_have_unique_ids() -> None:
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids)) and set(ids) >= NEEDS_RAY


# --- the decode cache ------------------------------------------------------------------------


def tiny_source(tmp: Path, decoded: list[int]) -> Source:
    root = tmp / "src"
    root.mkdir(exist_ok=True)
    (root / "a.txt").write_text("a")

    def decode() -> Pool:
        decoded.append(1)
        images = np.zeros((4, 2, 2, 3), np.uint8)
        return Pool("classification", ["a"], ["a"], images, np.zeros(4, np.int64), None, None, [])

    return Source("fake", root, "classification", ["a"], ["a"], [root / "a.txt"], decode)


def test_unwritable_cache_folder_decodes_without_cache_and_warns_once(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    cache_dir = tmp_path / "afile" / "cache"  # cannot be created, even by root
    decoded: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            pool, path, hit = cache_mod.load_or_build(tiny_source(tmp_path, decoded), cache_dir)
            assert path is None and not hit and pool.train_images.shape == (4, 2, 2, 3)
    assert decoded == [1, 1]
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and str(cache_dir) in messages[0] and "ARCHSWEEP_CACHE" in messages[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_cache_folder_decodes_without_cache(tmp_path: Path) -> None:
    cache_dir = tmp_path / "ro"
    cache_dir.mkdir()
    cache_dir.chmod(0o500)
    try:
        with pytest.warns(DataWarning, match="cannot be written"):
            _, path, _ = cache_mod.load_or_build(tiny_source(tmp_path, []), cache_dir)
        assert path is None
    finally:
        cache_dir.chmod(0o700)


def test_stale_tmp_files_are_removed_when_the_cache_is_next_used(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    host = cache_mod._host()
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    files = {
        "dead_writer": cache_dir / f"fake-{'a' * 24}.{host}.{dead_pid}.x1y2.tmp",
        "live_writer": cache_dir / f"fake-{'b' * 24}.{host}.{os.getpid()}.x1y2.tmp",
        "other_host_fresh": cache_dir / f"fake-{'c' * 24}.otherhost.{dead_pid}.x1y2.tmp",
        "old_format_old": cache_dir / f"fake-{'d' * 24}.k3j4.tmp",
        "old_format_fresh": cache_dir / f"fake-{'e' * 24}.k3j4.tmp",
        "not_ours_old": cache_dir / "download.tmp",
    }
    for f in files.values():
        f.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    for name in ("old_format_old", "not_ours_old"):
        os.utime(files[name], (two_hours_ago, two_hours_ago))
    cache_mod.load_or_build(tiny_source(tmp_path, []), cache_dir)
    left = {name for name, f in files.items() if f.exists()}
    assert left == {"live_writer", "other_host_fresh", "old_format_fresh", "not_ours_old"}
    # The build itself left no temporary file behind, only its entry.
    assert [
        p.suffix
        for p in cache_dir.glob("fake-*")
        if p.name.startswith("fake-") and not p.name.endswith(".tmp")
    ] == [".npz"]
