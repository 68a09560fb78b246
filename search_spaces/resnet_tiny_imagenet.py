"""Section A, variant 1: ResNet-18 on Tiny ImageNet (10 classes), stage by stage.

Each stage starts from the best configuration of the stage before. The course's budget is
<= 5M parameters and <= 512 channels. ResNet-18 itself (64-128-256-512, [2,2,2,2]: 11.17M
parameters) breaks it, and the assignment makes the 4th stage optional, so the baseline that
trains is ResNet-18 with the 4th stage dropped (64-128-256, [2,2,2]); the 11.17M model stands
beside it in the same stage as the infeasible reference (recorded with its parameter count, never
trained; a stage's best, which the next stage inherits, is chosen among trained trials only).

    python -m orchestrator.run search_spaces/resnet_tiny_imagenet.py
    python -m analysis.report runs/resnet_tiny_imagenet

A.5's recipe is common.FINAL_TRAINING (AdamW 1e-3, wd 0.05, cosine, 35 epochs, crop 4 + flip +
colour jitter 0.2) until a GPU run of search_spaces/final_recipe.py picks one. To train A.5 with
the recipe study's best trial, export it and name the file in ARCHSWEEP_A5_RECIPE (FromStudy
takes a model or a checkpoint, not training keys):

    python -m search_spaces.final_recipe --export runs/final_recipe a5_recipe.json
    ARCHSWEEP_A5_RECIPE=a5_recipe.json python -m orchestrator.run \
        search_spaces/resnet_tiny_imagenet.py --name resnet_tiny_imagenet_recipe

The file's keys (final_recipe.RECIPE_KEYS + epochs: optimizer, scheduler, lr, weight_decay,
label_smoothing, mixup_alpha, cutmix_alpha, ema_decay, augment, batch_size, epochs) go on top of
FINAL_TRAINING, with tta=True (flip TTA at the test evaluation, chosen beforehand, never by the
test score), and A.5's title names the file's source, so the report says where its recipe came
from. A run directory keeps the recipe it ran with: a resumed run with another recipe is refused.
"""

import json
import os

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import (
    COURSE_TRAINING,
    RESNET_18,
    TINY_IMAGENET_10,
    activations_stage,
    final_stage,
)

# A.1-A trains; A.1-B is the course's ResNet-18 as written, over the 5M budget.
BASELINE_CHANNELS = [(64, 128, 256), (64, 128, 256, 512)]

A5_RECIPE_ENV = "ARCHSWEEP_A5_RECIPE"


def a5_stage() -> Stage:
    """A.5 with FINAL_TRAINING, or with the recipe file named by $ARCHSWEEP_A5_RECIPE."""
    stage = final_stage("A.5")
    path = os.environ.get(A5_RECIPE_ENV)
    if path:
        with open(path) as f:
            recipe = json.load(f)
        stage.config = {**stage.config, **recipe["config"], "tta": True}
        stage.title = f"{stage.title} (recipe from {recipe['source']})"
    return stage


study = Study(
    name="resnet_tiny_imagenet",
    trainable="classification",
    description="ResNet-18 on 10 Tiny ImageNet classes: channels, depth, activation, final model.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **RESNET_18},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    stages=[
        Stage(
            "baseline",
            title="A.1 Baseline: ResNet-18 with 3 stages (4-stage reference over budget)",
            label="A.1",
            scheduler="fifo",
            space={"channels": tune.grid_search(BASELINE_CHANNELS)},  # blocks=2 in every stage
        ),
        Stage(
            "channels",
            title="A.2 Channels",
            label="A.2",
            scheduler="fifo",
            space={"channels": tune.grid_search([(32, 64, 128, 256), (64, 128, 256)])},
        ),
        Stage(
            "blocks",
            title="A.3 Depth (blocks per stage)",
            label="A.3",
            scheduler="fifo",
            space={"blocks": tune.grid_search([1, 2, 3])},
        ),
        activations_stage("A.4"),
        a5_stage(),
    ],
)
