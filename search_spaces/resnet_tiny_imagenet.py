"""Section A, variant 1: ResNet-18 on Tiny ImageNet (10 classes), stage by stage.

Each stage starts from the best configuration of the stage before. The course's budget is
<= 5M parameters and <= 512 channels; ResNet-18 itself (11.2M parameters) breaks it, so the
baseline is recorded as infeasible with its parameter count and the channel stage starts from the
base config instead.

    python -m orchestrator.run search_spaces/resnet_tiny_imagenet.py
    python -m analysis.report runs/resnet_tiny_imagenet
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import (
    COURSE_TRAINING,
    RESNET_18,
    TINY_IMAGENET_10,
    activations_stage,
    final_stage,
)

study = Study(
    name="resnet_tiny_imagenet",
    trainable="classification",
    description="ResNet-18 on 10 Tiny ImageNet classes: channels, depth, activation, final model.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **RESNET_18},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    stages=[
        Stage(
            "baseline",
            title="Baseline: ResNet-18 64-128-256-512, [2,2,2,2]",
            label="Baseline",
            scheduler="fifo",
        ),
        Stage(
            "channels",
            title="3.1 Channels",
            label="3.1",
            inherit="base",
            space={"channels": tune.grid_search([(32, 64, 128, 256), (64, 128, 256)])},
        ),
        Stage(
            "blocks",
            title="3.2 Blocks per stage",
            label="3.2",
            space={"blocks": tune.grid_search([1, 2, 3])},
        ),
        activations_stage(),
        final_stage(),
    ],
)
