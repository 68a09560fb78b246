"""Depth (section A.3): 1, 2 or 3 basic blocks per stage with the 32-64-128-256 channels.

Compare parameters, validation accuracy, convergence (epoch of best val) and overfitting.
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, RESNET_SMALL, TINY_IMAGENET_10

study = Study(
    name="blocks",
    trainable="classification",
    description="Blocks per stage [1,1,1,1], [2,2,2,2], [3,3,3,3].",
    base={**TINY_IMAGENET_10, **COURSE_TRAINING, **RESNET_SMALL},
    constraints={"max_params": 5_000_000, "max_channels": 512},
    stages=[
        Stage(
            "blocks",
            title="A.3 Depth (blocks per stage)",
            label="A.3",
            scheduler="fifo",
            space={"blocks": tune.grid_search([1, 2, 3])},
        ),
    ],
)
