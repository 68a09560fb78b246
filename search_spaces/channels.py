"""Channel schemes (section A.2): 32-64-128-256, 64-128-256 and 64-128-256-512 (ResNet-18).

A.2-A and A.2-B are the course's two options, as in resnet_tiny_imagenet.py; A.2-C (ResNet-18's
own widths) breaks the course's 5M-parameter budget and is reported as infeasible. Every scheme
trains to the end (fifo): the course compares them on the same budget.
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
            title="A.2 Channels",
            label="A.2",
            scheduler="fifo",
            space={
                "channels": tune.grid_search(
                    [(32, 64, 128, 256), (64, 128, 256), (64, 128, 256, 512)]
                )
            },
        ),
    ],
)
