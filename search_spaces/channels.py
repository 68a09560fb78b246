"""Channel schemes (section A.2): 64-128-256-512 (ResNet-18), 32-64-128-256, 64-128-256.

The first breaks the course's 5M-parameter budget and is reported as infeasible.
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, RESNET_18, TINY_IMAGENET_10

study = Study(
    name="channels",
    trainable="classification",
    description="Channel schemes of a ResNet with two basic blocks per stage.",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **RESNET_18},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    stages=[
        Stage(
            "channels",
            title="Channels",
            label="3.1",
            space={
                "channels": tune.grid_search(
                    [(64, 128, 256, 512), (32, 64, 128, 256), (64, 128, 256)]
                )
            },
        ),
    ],
)
