"""`python -m orchestrator.run STUDY_FILE`: run a study's stages as Ray Tune sweeps.

Composes the pieces; trains nothing itself. Running the same command again resumes: finished
stages are read back from study.json, the running stage's Tuner is restored (finished trials are
not run again, unfinished ones continue from their last checkpoint).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import ray_setup
from orchestrator.plan import plan_stage, stage_base
from orchestrator.records import StudyRecord, rel
from orchestrator.study import FromStudy, Stage, Study, StudyError, load_study
from orchestrator.tuner import (
    Resources,
    asha_decisions,
    infeasible_record,
    run_stage,
    trial_record,
)
from trainables.config import ConfigError, bundle_info, model_config, split_config
from trainables.data import (
    DataBundle,
    DataError,
    DataSpec,
    dataset_dir,
    default_data_root,
    ensure_downloaded,
    load_bundle,
)
from trainables.evaluate import evaluate_checkpoint
from trainables.models import count_parameters
from trainables.trainable import DEFAULT_METRIC

# Enough to exercise every code path of every trial (train, validate, checkpoint, report).
SMOKE = {"epochs": 1, "max_batches": 2, "batch_size": 32}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m orchestrator.run",
        description="Run a study file's stages as Ray Tune sweeps (resumes when run again).",
    )
    p.add_argument("study_file", help="a study file, e.g. search_spaces/activations.py")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="every trial one epoch of 2 batches of 32: validates a study in a minute",
    )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding the data sets (default: $ARCHSWEEP_DATA, else ./data)",
    )
    p.add_argument("--storage", default="runs", help="where experiment folders go (default: runs)")
    p.add_argument("--name", default=None, help="experiment folder name (default: the study's)")
    p.add_argument(
        "--address",
        default=None,
        help="join a Ray cluster ('auto' = the one this machine belongs to)",
    )
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument(
        "--gpus-per-trial",
        type=float,
        default=0.0,
        help="GPUs per trial; fractions such as 0.25 share one GPU among trials",
    )
    p.add_argument("--max-concurrent", type=int, default=0, help="0 = as many as fit")
    p.add_argument("--seed", type=int, default=0, help="seed of samplers (random, Optuna)")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="start over; the old experiment folder is moved aside, never deleted",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a base-config value of every stage, e.g. --set epochs=5",
    )
    return p.parse_args(argv)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`--set k=v`: v is read as a Python literal (5, 1e-3, [1,2], 'adam'), else as a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise StudyError(f"--set {pair!r} must look like KEY=VALUE, e.g. --set epochs=5")
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def move_aside(run_dir: Path) -> Path | None:
    if not run_dir.exists():
        return None
    target = run_dir.with_name(f"{run_dir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir.rename(target)
    return target


def resolve_references(config: dict[str, Any], storage: Path) -> dict[str, Any]:
    """Replace FromStudy values with the referenced study's best trial (config + checkpoint)."""
    out = dict(config)
    for key, value in config.items():
        if not isinstance(value, FromStudy):
            continue
        path = storage / value.study / "study.json"
        if not path.is_file():
            raise StudyError(
                f"{key}=FromStudy({value.study!r}) needs the study {value.study!r} to have run "
                f"first ({path} is missing); run its study file, then this one"
            )
        record = json.loads(path.read_text())
        stages = [s for s in record["stages"] if s.get("best")]
        stage = (
            next((s for s in stages if s["name"] == value.stage), None)
            if value.stage
            else (stages[-1] if stages else None)
        )
        if stage is None:
            raise StudyError(
                f"{key}=FromStudy({value.study!r}, stage={value.stage!r}): no finished "
                f"stage with a best trial in {path}"
            )
        best = stage["best"]
        if key == "encoder":
            out[key] = model_config(best["config"], {})
            out["encoder_checkpoint"] = str((storage / value.study / best["checkpoint"]).resolve())
        else:
            out[key] = str((storage / value.study / best["checkpoint"]).resolve())
    return out


def inherited_config(study: Study, stage: Stage, record: StudyRecord) -> dict[str, Any]:
    index = study.stages.index(stage)
    if stage.inherit == "base" or index == 0:
        return {}
    source = study.stages[index - 1].name if stage.inherit == "previous" else stage.inherit
    best = record.stage(source).get("best")
    if not best:
        raise StudyError(
            f"stage {stage.name!r} inherits from {source!r}, which has no trained "
            "configuration (every trial was infeasible or failed); see study.json"
        )
    return {k: v for k, v in best["config"].items() if k not in ("label", "max_batches")}


class DataCache:
    """Decoded bundles of this driver, one per distinct data config."""

    def __init__(self, data_root: Path) -> None:
        self.data_root = data_root
        self.bundles: dict[str, DataBundle] = {}

    def spec(self, config: dict[str, Any]) -> DataSpec:
        data, _, _ = split_config(config)
        path = dataset_dir(data["dataset"], self.data_root)
        if data["data_dir"]:
            path = self.data_root / data["data_dir"]
        fields = {k: v for k, v in data.items() if k not in ("dataset", "data_dir")}
        return DataSpec(dataset=data["dataset"], path=path, **fields)

    def get(self, config: dict[str, Any]) -> DataBundle:
        spec = self.spec(config)
        key = repr(spec)
        if key not in self.bundles:
            t0 = time.perf_counter()
            try:
                ensure_downloaded(spec)  # no-op when present; offline: a DataError saying where
                self.bundles[key] = load_bundle(spec)
            except DataError as err:
                raise DataError(
                    f"{err}\n(data root: {self.data_root}; set it with --data-root DIR or "
                    "$ARCHSWEEP_DATA, default ./data)"
                ) from None
            b = self.bundles[key]
            print(
                f"data: {spec.dataset} from {spec.path}: {len(b.train.images)} train / "
                f"{len(b.val.images)} val / {len(b.test.images)} test, "
                f"{len(b.class_names) if b.task == 'classification' else 'binary masks'} "
                f"({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
        return self.bundles[key]


def pick_best(trials: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    scored = [
        t for t in trials if t["status"] not in ("infeasible", "error") and metric in t["best"]
    ]
    if not scored:
        return None
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda t: sign * float(t["best"][metric]))


def train_stage(
    study: Study,
    plan: Any,
    bundle: DataBundle,
    run_dir: Path,
    resources: Resources,
    metric: str,
    mode: str,
) -> list[dict[str, Any]]:
    """Run (or resume) the stage's feasible trials; their study.json records."""
    if not plan.feasible and plan.stage.search != "optuna":
        return []
    results = run_stage(study, plan, bundle, run_dir, resources, metric, mode)
    stops = asha_decisions(run_dir.resolve() / plan.stage.name)
    trials = []
    for result in results:
        trial = trial_record(result, run_dir, metric, mode, stops)
        try:
            trial["params"] = count_parameters(model_config(trial["config"], bundle_info(bundle)))
        except ValueError:  # a sampled config the family cannot build; the trial says why
            trial["params"] = None
        trials.append(trial)
    return trials


def best_summary(best: dict[str, Any] | None, metric: str) -> dict[str, Any] | None:
    if best is None:
        return None
    return {
        "trial_id": best["trial_id"],
        "label": best["label"],
        "config": best["config"],
        "checkpoint": best["best_checkpoint"],
        "value": best["best"][metric],
    }


def evaluate_best(
    record: StudyRecord, stage: Stage, best: dict[str, Any], bundle: DataBundle, task: str
) -> None:
    """Test-set evaluation of the stage's best checkpoint into evaluation/<stage>.json/.npz."""
    run_dir = record.run_dir
    evaluation = evaluate_checkpoint(
        run_dir / best["best_checkpoint"],
        bundle,
        task,
        run_dir / "evaluation",
        stage.name,
        best["trial_id"],
    )
    record.data["evaluations"][stage.name] = rel(
        run_dir / "evaluation" / f"{stage.name}.json", run_dir
    )
    record.save()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in evaluation["metrics"].items())
    print(f"[{stage.name}] test set: {shown}", flush=True)


def run_study(study: Study, args: argparse.Namespace) -> int:
    storage = Path(args.storage)
    run_dir = storage / (args.name or study.name)
    if args.fresh:
        moved = move_aside(run_dir)
        if moved:
            print(f"--fresh: previous run kept at {moved}")
    overrides = parse_overrides(args.set)
    metric, mode = (study.metric, study.mode) if study.metric else DEFAULT_METRIC[study.trainable]
    data = DataCache(args.data_root or default_data_root())
    resources = Resources(args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent, args.seed)

    record = StudyRecord.open(
        run_dir,
        {
            "study": study.name,
            "trainable": study.trainable,
            "metric": metric,
            "mode": mode,
            "description": study.description,
            "constraints": study.constraints,
        },
        [s.name for s in study.stages],
        {"set": overrides, "smoke": bool(args.smoke)},
    )
    ray_setup.log_to_file(run_dir / "orchestrator.log")
    ray_setup.start_ray(args.address)
    print(f"study {study.name}: {len(study.stages)} stage(s) -> {run_dir}", flush=True)

    for stage in study.stages:
        srec = record.stage(stage.name)
        if srec["status"] == "finished":
            print(f"[{stage.name}] finished earlier; best: {(srec.get('best') or {}).get('label')}")
            continue
        base = stage_base(
            study,
            stage,
            inherited_config(study, stage, record),
            {**overrides, **(SMOKE if args.smoke else {})},
        )
        base = resolve_references(base, storage)
        bundle = data.get(base)
        record.data["data"] = {
            "dataset": bundle.name,
            "class_names": list(bundle.class_names),
            "train": len(bundle.train.images),
            "val": len(bundle.val.images),
            "test": len(bundle.test.images),
            "image_size": bundle.image_size,
        }
        plan = plan_stage(study, stage, base, bundle_info(bundle))
        infeasible = [infeasible_record(p) for p in plan.points if not p.feasible]
        for t in infeasible:
            print(f"[{stage.name}] infeasible {t['label'] or ''}: {t['reason']}", flush=True)
        srec.update(
            title=stage.title or stage.name,
            label=stage.label,
            status="running",
            epochs=plan.base["epochs"],
            scheduler=stage.scheduler,
            search=stage.search,
            compare=plan.varied_keys,
            trials=infeasible,
        )
        record.save()

        trials = infeasible + train_stage(study, plan, bundle, run_dir, resources, metric, mode)
        order = {p.label: i for i, p in enumerate(plan.points)}
        trials.sort(key=lambda t: (order.get(t["label"], len(order)), t["trial_id"] or ""))
        best = pick_best(trials, metric, mode)
        srec.update(trials=trials, best=best_summary(best, metric))
        record.save()
        if stage.evaluate and best and best["best_checkpoint"]:
            evaluate_best(record, stage, best, bundle, study.trainable)
        # Finished only now: a run stopped during evaluation redoes it on resume.
        srec["status"] = "finished"
        record.save()

    record.data["status"] = "finished"
    record.save()
    print(
        f"study {study.name} finished: {run_dir / 'study.json'}; "
        f"report: python -m analysis.report {run_dir}",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        study = load_study(args.study_file)
        return run_study(study, args)
    except (StudyError, ConfigError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
