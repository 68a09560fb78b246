"""Section C, reference models: the course sample solution's networks at the course's budget.

MNIST (5 epochs): FC_MNIST (784-512-256-128-10), SimpleCNN (2 conv + 2 FC, 421,642 parameters)
and ModelWithBasicBlocks (ResNet-18, CIFAR stem). CIFAR-10 (10 epochs): FC_CIFAR
(3072-2048-1024-512-256-10 with dropout), ModelWithBasicBlocks and ModelWithRegularization (the
same with dropout + weight decay). Adam, lr 1e-3, batch 64 throughout ("same hyper-parameters"),
no augmentation, so the train-test gap shows overfitting as the course's analysis asks. The
models are trainables.models.reference (parameter counts tested to the unit). Every stage is
evaluated on the official test set.

The ResNet-18 stages need a GPU for a 10-epoch run; search_spaces/cnn_vs_fc_small.py is the
CPU-sized version of this study.

    python -m orchestrator.run search_spaces/cnn_vs_fc.py
"""

from orchestrator.study import Stage, Study
from trainables.models.reference import ReferenceModel, reference

# The course's budget: Adam 1e-3; MNIST 5 epochs, CIFAR-10 10 epochs (per reference model).
TRAINING = {"batch_size": 64, "optimizer": "adam", "lr": 1e-3}
DATA = {
    "mnist": {"dataset": "mnist", "val_fraction": 0.1, "test_split": "official"},
    "cifar10": {"dataset": "cifar10", "val_fraction": 0.1, "test_split": "official"},
}


def model_stage(name: str, title: str, data: dict, model: dict, **trainer) -> Stage:
    """One model, trained once to the end (fifo) from the base config and evaluated."""
    return Stage(
        name,
        title=title,
        label=title,
        inherit="base",
        scheduler="fifo",
        evaluate=True,
        config={**data, **model, **trainer},
    )


def reference_stage(name: str, ref: ReferenceModel) -> Stage:
    return model_stage(
        name,
        f"{ref.name}, reference",
        DATA[ref.dataset],
        dict(ref.model),
        epochs=ref.epochs,
        **TRAINING,
        **ref.trainer,
    )


study = Study(
    name="cnn_vs_fc",
    trainable="classification",
    description="Section C with the course's reference models (sample solution), course budget.",
    base={**TRAINING, **DATA["mnist"], "epochs": 5, "model": "fc"},
    stages=[
        reference_stage("mnist_fc", reference("FC_MNIST")),
        reference_stage("mnist_cnn", reference("SimpleCNN")),
        reference_stage("mnist_resnet18", reference("ModelWithBasicBlocks (MNIST)")),
        reference_stage("cifar_fc", reference("FC_CIFAR")),
        reference_stage("cifar_resnet18", reference("ModelWithBasicBlocks (CIFAR)")),
        reference_stage("cifar_regularized", reference("ModelWithRegularization")),
    ],
)
