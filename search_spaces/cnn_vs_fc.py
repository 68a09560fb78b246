"""Section C: fully connected networks against CNNs, same hyper-parameters.

MNIST: a 3-layer fully connected net, a simple CNN (2 conv layers) and a CNN with residual
blocks. CIFAR-10: a deep fully connected net (1024-512-512-256 with dropout), a residual CNN,
and the same CNN regularized (dropout + weight decay). Every stage is evaluated on the official
test set (accuracy, per-class report, confusion matrix, inference time); the report's table of
evaluations puts them side by side, and train-test gaps show overfitting.

    python -m orchestrator.run search_spaces/cnn_vs_fc.py
"""

from orchestrator.study import Stage, Study

TRAINING = {"epochs": 10, "batch_size": 128, "optimizer": "adam", "lr": 1e-3}
MNIST = {"dataset": "mnist", "val_fraction": 0.1, "test_split": "official"}
CIFAR = {
    "dataset": "cifar10",
    "val_fraction": 0.1,
    "test_split": "official",
    "augment": {"hflip": True, "crop_padding": 4},
}


def model_stage(name: str, title: str, data: dict, model: dict, **trainer) -> Stage:
    return Stage(
        name,
        title=title,
        label=title,
        inherit="base",
        scheduler="fifo",
        evaluate=True,
        config={**data, **model, **trainer},
    )


study = Study(
    name="cnn_vs_fc",
    trainable="classification",
    description="Fully connected vs convolutional vs residual networks on MNIST and CIFAR-10.",
    base={**TRAINING, **MNIST, "model": "fc"},
    stages=[
        model_stage("mnist_fc", "MNIST FC", MNIST, {"model": "fc", "hidden": (512, 256, 128)}),
        model_stage("mnist_cnn", "MNIST CNN", MNIST, {"model": "simple_cnn", "channels": (32, 64)}),
        model_stage(
            "mnist_residual",
            "MNIST ResCNN",
            MNIST,
            {"model": "residual_cnn", "channels": (32, 64), "blocks": (1, 1)},
        ),
        model_stage(
            "cifar_fc",
            "CIFAR FC",
            CIFAR,
            {"model": "fc", "hidden": (1024, 512, 512, 256), "dropout": 0.3},
        ),
        model_stage(
            "cifar_residual",
            "CIFAR ResCNN",
            CIFAR,
            {"model": "residual_cnn", "channels": (32, 64, 128)},
        ),
        model_stage(
            "cifar_regularized",
            "CIFAR ResCNN+reg",
            CIFAR,
            {"model": "residual_cnn", "channels": (32, 64, 128), "dropout": 0.2},
            weight_decay=5e-4,
        ),
    ],
)
