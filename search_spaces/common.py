"""Settings the course's study files share (import them; a study file stays a short read).

Study files are plain Python executed by `python -m orchestrator.run`: only run ones you trust.

Stage labels follow the numbering of the assignment (../shared/EXPERIMENTS.md) and mean the same
experiment in every file: A.1 baseline, A.2 channels, A.3 depth, A.4 activations, A.5 final model;
A2.1-A2.5 the stricter variant (baseline, channels, dropout, activations, final); B.1, B.2.x, B.3-x;
D.1, D.2. A grid stage's label becomes "A.2-A", "A.2-B", ... in grid order.

Comparison stages use scheduler="fifo": the course compares every variant trained with the same
budget (final accuracy, speed of convergence, overfitting), and ASHA would stop some early. ASHA
is for stages that search wide (Optuna over lr or dropout).
"""

from __future__ import annotations

from ray import tune

from orchestrator.study import Stage

# Tiny ImageNet, 10 classes (the first 10 of wnids.txt), 64x64; the official val folder is the
# test split and 10% of train (stratified) is validation. `--set classes=...` picks others.
TINY_IMAGENET_10 = {
    "dataset": "tiny_imagenet",
    "classes": 10,
    "val_fraction": 0.1,
    "test_split": "official",
    "split_seed": 0,
}

# The course's training recipe: Adam, lr 1e-3, cross-entropy, 20 epochs, batch 128, with the
# standard light augmentation for 64x64 inputs (pad-4 random crop + horizontal flip).
COURSE_TRAINING = {
    "epochs": 20,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "augment": {"hflip": True, "crop_padding": 4},
}

# ResNet with the CIFAR-style stem (conv3x3/1, no max-pool): the course's choice for 64x64 input.
# blocks=2 means two basic blocks in every stage, whatever the number of stages.
RESNET_18 = {
    "model": "resnet",
    "channels": (64, 128, 256, 512),
    "blocks": 2,
    "stem": "cifar",
    "activation": "relu",
}

# A model inside the course's 5M-parameter budget, for the single-dimension studies.
RESNET_SMALL = {**RESNET_18, "channels": (32, 64, 128, 256)}

# The final model's recipe (section A.5): longer, AdamW with cosine decay, more augmentation.
FINAL_TRAINING = {
    "epochs": 35,
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "scheduler": "cosine",
    "augment": {"hflip": True, "crop_padding": 4, "color_jitter": 0.2},
}

# CIFAR-10 (the image-folder copy or torchvision's pickles), official test set, 10 epochs.
CIFAR10_TRAINING = {
    "dataset": "cifar10",
    "test_split": "official",
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "adam",
    "lr": 1e-3,
    "augment": {"hflip": True, "crop_padding": 4},
}

# The course's activations, chosen by one model parameter (section A.4).
ACTIVATIONS = ("relu", "leaky_relu", "elu", "gelu")


def activations_stage(label: str = "A.4") -> Stage:
    """ReLU, LeakyReLU, ELU, GELU (section A.4), each trained to the end: the course compares
    convergence per epoch and final accuracy, so no trial may be cut early."""
    return Stage(
        "activations",
        title=f"{label} Activations",
        label=label,
        scheduler="fifo",
        space={"activation": tune.grid_search(list(ACTIVATIONS))},
    )


def final_stage(label: str = "A.5") -> Stage:
    """Best configuration so far, trained longer (FINAL_TRAINING), evaluated on the test split."""
    return Stage(
        "final",
        title=f"{label} Final model",
        label=label,
        config=FINAL_TRAINING,
        scheduler="fifo",
        evaluate=True,
    )
