"""Section D: kernel size at about equal parameter counts, and depth with/without residuals.

D.1: 3x3, 5x5, 7x7 and 1x1+3x3 convolutions whose widths are solved so every model has
~150k parameters (within 5%), on CIFAR-10. D.2: 2, 4 and 6 conv layers, and 6 with residual
connections. Compare accuracy and training time; per-layer gradient norms and receptive fields
come from trainables.models (probes.layer_grad_norms, receptive_field).

    python -m orchestrator.run search_spaces/architecture_analysis.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import CIFAR10_TRAINING

study = Study(
    name="architecture_analysis",
    trainable="classification",
    description="Kernel size at equal parameters; depth with and without residual connections.",
    base={
        **CIFAR10_TRAINING,
        "model": "kernel_cnn",
        "target_params": 150_000,
    },
    stages=[
        Stage(
            "kernels",
            title="D.1 Kernel size at equal parameters",
            label="D.1",
            scheduler="fifo",
            space={"kernel": tune.grid_search(["3x3", "5x5", "7x7", "1x1+3x3"])},
        ),
        Stage(
            "depth",
            title="D.2 Depth, with and without residuals",
            label="D.2",
            inherit="base",
            scheduler="fifo",
            config={"model": "depth_cnn", "width": 32},
            space={
                ("n_conv", "residual"): tune.grid_search(
                    [(2, False), (4, False), (6, False), (6, True)]
                )
            },
        ),
    ],
)
