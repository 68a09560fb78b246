"""Section B.1: a classifier at 128x128 input, within ~5M parameters.

Tiny ImageNet's 64x64 images are resized to 128x128 once at decode time (PIL bilinear, no crop;
see trainables/data/spec.py), then augmented per batch with random resized crops (scale
0.6-1.0), horizontal flips and colour jitter. The ImageNet stem (7x7/2 + max-pool) brings the
input down to 32x32 before the first stage. Its best checkpoint is the U-Net backbone of
`unet_backbone.py`.

    python -m orchestrator.run search_spaces/classifier128.py
"""

from ray import tune

from orchestrator.study import Stage, Study
from search_spaces.common import COURSE_TRAINING, TINY_IMAGENET_10

study = Study(
    name="classifier128",
    trainable="classification",
    description="Own ResNet-style classifier at 128x128 input (Tiny ImageNet resized from 64).",
    base={
        **TINY_IMAGENET_10,
        **COURSE_TRAINING,
        "image_size": 128,
        "epochs": 30,
        "optimizer": "adamw",
        "weight_decay": 0.05,
        "scheduler": "cosine",
        "augment": {"hflip": True, "random_resized_crop": (0.6, 1.0), "color_jitter": 0.3},
        "model": "resnet",
        "stem": "imagenet",
        "channels": (32, 64, 128, 256),
        "blocks": 2,
    },
    constraints={"max_params": 5_000_000},
    stages=[
        Stage(
            "architecture",
            title="B.1 Classifier architecture (128x128)",
            label="B.1",
            scheduler="fifo",
            evaluate=True,
            space={
                ("channels", "blocks"): tune.grid_search(
                    [
                        ((32, 64, 128, 256), 2),
                        ((48, 96, 192, 256), (1, 2, 2, 1)),
                        ((64, 128, 256, 256), 2),  # 5.2M: over the budget
                    ]
                ),
            },
        ),
    ],
)
