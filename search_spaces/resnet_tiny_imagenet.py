"""Section A, variant 1: ResNet-18 on Tiny ImageNet (10 classes), stage by stage.

Each stage starts from the best configuration of the stage before. The course's budget is
<= 5M parameters and <= 512 channels. ResNet-18 itself (64-128-256-512, [2,2,2,2]: 11.17M
parameters) breaks it, and the assignment makes the 4th stage optional, so the baseline that
trains is ResNet-18 with the 4th stage dropped (64-128-256, [2,2,2]); the 11.17M model stands
beside it in the same stage as the infeasible reference (recorded with its parameter count, never
trained; a stage's best, which the next stage inherits, is chosen among trained trials only).

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

# A.1-A trains; A.1-B is the course's ResNet-18 as written, over the 5M budget.
BASELINE_CHANNELS = [(64, 128, 256), (64, 128, 256, 512)]

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
        final_stage("A.5"),
    ],
)
