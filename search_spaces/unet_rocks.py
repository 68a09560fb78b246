"""Section B.2: the base U-Net on the lunar rock data set (binary masks, 128x128x3 input).

4 levels down / 4 up with skips, base 32 channels capped at 160 (2.66M parameters; a plain
base-32 U-Net has 7.8M, three times the course's ~2.5M +-10% budget), one logit per pixel
(sigmoid in the loss and metrics). Compares downsampling (max-pool vs stride-2 conv) and losses
(BCE, Dice, 0.5 BCE + 0.5 Dice). Flips are applied identically to image and mask.

    python -m orchestrator.run search_spaces/unet_rocks.py   # MOON_SEGMENTATION_BINARY
    python -m orchestrator.run search_spaces/unet_rocks.py --set data_dir=MARS_ROCKS_BINARY
"""

from ray import tune

from orchestrator.study import Stage, Study

UNET_DATA = {"dataset": "lunar", "image_size": 128, "val_fraction": 0.15, "test_fraction": 0.15}
UNET_TRAINING = {
    "epochs": 30,
    "batch_size": 16,
    "optimizer": "adam",
    "lr": 1e-3,
    "scheduler": "cosine",
    "augment": {"hflip": True, "vflip": True, "color_jitter": 0.1},
    # Early stopping on val IoU (the study metric), as the course recommends for B.2/B.3.
    "early_stop_patience": 8,
}
BASE_UNET = {"model": "unet", "base_channels": 32, "max_width": 160, "depth": 4}

study = Study(
    name="unet_rocks",
    trainable="segmentation",
    description="Base U-Net on rock masks: downsampling and loss.",
    base={**UNET_DATA, **UNET_TRAINING, **BASE_UNET, "loss": "bce_dice"},
    metric="val_iou",
    constraints={"param_budget": {"target": 2_500_000, "tolerance": 0.10}},
    stages=[
        Stage(
            "downsampling",
            title="B.2.1 Downsampling",
            label="B.2.1",
            scheduler="fifo",
            space={"down": tune.grid_search(["maxpool", "stride"])},
        ),
        Stage(
            "loss",
            title="B.2.2 Loss",
            label="B.2.2",
            scheduler="fifo",
            evaluate=True,
            space={"loss": tune.grid_search(["bce", "dice", "bce_dice"])},
        ),
    ],
)
