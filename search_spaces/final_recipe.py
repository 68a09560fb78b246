"""The final model's training recipe, searched (issue 19): Optuna (seeded TPE) with ASHA.

Variant 1's winner (A.1-A.4 on one H200, commit bc3c1f4: 64-128-256, [2, 2, 2] basic blocks,
GELU, 2.78M parameters) trained with AdamW + cosine and the course's light augmentation. This
study keeps that architecture and searches how to train it on so few images (4,500 in variant
1): lr, weight decay, label smoothing, mixup and CutMix, the weight EMA and the run length (up to
100 epochs). ASHA stops the recipes that are behind at each rung, so most of the 20 trials cost
a few epochs.

Model selection stays honest: trials are ranked on a validation split of the training images
only, and this study never evaluates on the test split (no stage has evaluate=True). The test
split is first seen by variant 1's A.5 (search_spaces/resnet_tiny_imagenet.py), trained with the
recipe this study picks:

    python -m orchestrator.run search_spaces/final_recipe.py --gpus-per-trial 0.25
    python search_spaces/final_recipe.py --export runs/final_recipe a5_recipe.json
    ARCHSWEEP_A5_RECIPE=a5_recipe.json python -m orchestrator.run \\
        search_spaces/resnet_tiny_imagenet.py --name resnet_tiny_imagenet_recipe

The validation split is 20% of the 5,000 training images here (1,000), not variant 1's 10%:
ranking 20 recipes on 500 images picks noise (the binomial std of an accuracy near 80% is 1.8
points on 500 images, 1.3 on 1,000), and variant 1's val ran 4-8 points above its test accuracy.

Size, for <= 4 minutes on one H200 at --gpus-per-trial 0.25 (figures from issue 19: one epoch
of this model at 64 px takes 0.47 s alone; four trials share the GPU at ~3k images/s each):
  - one epoch of one trial: 4,000 train images / 3,000 img/s = 1.33 s, + 1,000 val images
    (~0.1 s) + the epoch's checkpoint, ~1.5 s;
  - ASHA here: grace 10 epochs, reduction factor 3, max 100: rungs at 10, 30, 90. Every trial
    trains to 10, a third to 30, a ninth to 90 (or to its own shorter end): per trial on
    average 10 + 20/3 + 60/9 ~ 23 epochs (fewer: a trial planned for 40-80 epochs ends there);
  - 20 trials x 23 epochs x 1.5 s / 4 at once = 173 s, + ~40 s of Ray start, per-trial
    set-up and the last trials running alone: ~215 s < 240 s.
  - FIFO on the same 20 trials: 20 x ~75 planned epochs x 1.5 s / 4 = 560 s; the report's "ASHA
    savings" section measures the real ratio from the run (analysis/asha_savings.py).
With --smoke every trial trains one epoch (epoch_fraction scales the smoke budget's epochs=1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import TINY_IMAGENET_10

# Variant 1's winner on one H200 (issue 19): A.1-A (64-128-256) -> A.3 blocks=2 -> A.4 GELU.
VARIANT1_WINNER = {
    "model": "resnet",
    "channels": (64, 128, 256),
    "blocks": 2,
    "stem": "cifar",
    "activation": "gelu",
}

# What the search leaves fixed: variant 1's A.5 recipe (AdamW + cosine, crop 4 + flip + colour
# jitter 0.2) with 100 epochs as the budget that epoch_fraction takes a part of.
RECIPE_BASE = {
    "epochs": 100,
    "batch_size": 128,
    "optimizer": "adamw",
    "scheduler": "cosine",
    "lr": 1e-3,
    "weight_decay": 0.05,
    "augment": {"hflip": True, "crop_padding": 4, "color_jitter": 0.2},
}

SPACE = {
    "lr": tune.loguniform(3e-4, 4e-3),
    "weight_decay": tune.loguniform(0.01, 0.3),
    "label_smoothing": tune.uniform(0.0, 0.2),
    "mixup_alpha": tune.choice([0.0, 0.2, 0.8]),
    "cutmix_alpha": tune.choice([0.0, 1.0]),
    # Per optimizer step; 32 steps per epoch here: horizons 1/(1-d) of ~3, 6 and 16 epochs.
    "ema_decay": tune.choice([0.0, 0.99, 0.995, 0.998]),
    "epoch_fraction": tune.choice([0.4, 0.6, 0.8, 1.0]),  # 40, 60, 80 or 100 epochs
}

# The keys A.5 takes from the best trial (`--export`); epochs is written as the number trained.
RECIPE_KEYS = (
    "optimizer",
    "scheduler",
    "lr",
    "weight_decay",
    "label_smoothing",
    "mixup_alpha",
    "cutmix_alpha",
    "ema_decay",
    "augment",
    "batch_size",
)

study = Study(
    name="final_recipe",
    trainable="classification",
    description=(
        "The training recipe of variant 1's final model (64-128-256, [2,2,2], GELU): Optuna "
        "with ASHA over lr, weight decay, label smoothing, mixup/CutMix, weight EMA and run "
        "length, ranked on a 20% validation split; the test split is left to variant 1's A.5."
    ),
    base={**TINY_IMAGENET_10, "val_fraction": 0.2, **RECIPE_BASE, **VARIANT1_WINNER},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    asha={"grace_period": 10, "reduction_factor": 3},
    stages=[
        Stage(
            "recipe",
            title="Recipe search (Optuna + ASHA)",
            label="R",
            space=SPACE,
            search="optuna",
            scheduler="asha",
            num_samples=20,
        ),
    ],
)


def best_recipe(run_dir: str | Path) -> dict[str, Any]:
    """{"config": A.5's keys from the recipe stage's best trial, "source": where they came from}.

    Raises:
        SystemExit: the run has no finished recipe stage with a best trial.
    """
    from analysis.rundir import load_study
    from trainables.contract import planned_epochs

    run = load_study(run_dir)
    stage = next((s for s in run.stages if s.name == "recipe"), None)
    if stage is None or stage.best is None:
        raise SystemExit(f"{run_dir}: no best trial of stage 'recipe' yet (did the study finish?)")
    config = stage.best.config
    recipe = {k: config[k] for k in RECIPE_KEYS if k in config}
    recipe["epochs"] = planned_epochs(config)
    value = stage.best.value
    source = (
        f"study final_recipe ({Path(run_dir).name}), best trial "
        f"{stage.best.label or stage.best.trial_id} of "
        f"{len(stage.trials)} by {run.metric}"
        + (f" {value:.4f}" if isinstance(value, int | float) else "")
        + f" on the {config.get('val_fraction', 0.2):.0%} validation split"
    )
    return {"source": source, "config": recipe}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Write the recipe study's best recipe as JSON for variant 1's A.5 "
        "(ARCHSWEEP_A5_RECIPE=FILE)."
    )
    p.add_argument("--export", nargs=2, metavar=("RUN_DIR", "OUT_JSON"), required=True)
    args = p.parse_args(argv)
    run_dir, out = args.export
    recipe = best_recipe(run_dir)
    Path(out).write_text(json.dumps(recipe, indent=1))
    print(f"{out}: {recipe['source']}\n{json.dumps(recipe['config'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
