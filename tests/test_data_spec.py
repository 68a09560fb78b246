"""DataSpec normalization and validation, data roots, class selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainables.data import (
    DataError,
    DataSpec,
    dataset_dir,
    default_data_root,
    get_dataset,
    list_datasets,
    resolve_data_dir,
)
from trainables.data.spec import select_classes

IDS = [f"c{i}" for i in range(10)]


def test_default_data_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ARCHSWEEP_DATA", raising=False)
    assert default_data_root() == Path("data")
    monkeypatch.setenv("ARCHSWEEP_DATA", str(tmp_path))
    assert default_data_root() == tmp_path
    spec = DataSpec("tiny_imagenet")
    assert spec.path == tmp_path / "tiny-imagenet-200"
    assert DataSpec("mnist").path == tmp_path  # torchvision root layout


def test_dataset_dir_accepts_root_or_dataset_folder(tmp_path: Path) -> None:
    (tmp_path / "tiny-imagenet-200").mkdir()
    assert dataset_dir("tiny_imagenet", tmp_path) == tmp_path / "tiny-imagenet-200"
    only = tmp_path / "my-copy"
    only.mkdir()
    (only / "wnids.txt").write_text("n1\n")
    assert dataset_dir("tiny_imagenet", only) == only
    assert set(list_datasets()) >= {"tiny_imagenet", "mnist", "cifar10", "lunar"}
    assert get_dataset("lunar").folder == "MOON_SEGMENTATION_BINARY"


def test_unknown_dataset_names_valid_ones() -> None:
    with pytest.raises(
        DataError, match=r"'imagenet'; valid: cifar10, .*lunar, mnist, tiny_imagenet"
    ):
        DataSpec("imagenet", Path("x"))


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"val_fraction": 1.5}, "val_fraction=1.5"),
        ({"test_fraction": -0.1}, "test_fraction=-0.1"),
        ({"val_fraction": 0.6, "test_fraction": 0.5, "test_split": "holdout"}, "leaves no"),
        ({"test_split": "val"}, "test_split='val'.*official, holdout"),
        ({"image_size": 0}, "image_size=0"),
        ({"image_size": 12.5}, "image_size=12.5"),
        ({"classes": 0}, "classes=0"),
        ({"classes": "n01443537"}, "classes='n01443537'"),
        ({"classes": ["a", "a"]}, "lists a more than once"),
        ({"classes": {"n": 3, "sed": 1}}, "unknown keys: sed"),
        ({"classes": ["a"], "class_seed": 3}, "class_seed only applies"),
        ({"class_seed": "x"}, "class_seed='x'"),
    ],
)
def test_bad_options_name_the_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        DataSpec("tiny_imagenet", Path("x"), **kwargs)


def test_class_forms_normalize_to_one_representation() -> None:
    a = DataSpec("cifar10", Path("x"), classes={"n": 3, "seed": 7})
    b = DataSpec("cifar10", Path("x"), classes=3, class_seed=7)
    assert a == b and hash(a) == hash(b)
    assert (a.classes, a.class_seed) == (3, 7)
    c = DataSpec("cifar10", "x", classes=["cat", "dog"])
    assert c.classes == ("cat", "dog") and isinstance(c.path, Path)


def test_lunar_always_uses_holdout() -> None:
    assert DataSpec("lunar", Path("x")).uses_holdout_test
    assert not DataSpec("mnist", Path("x")).uses_holdout_test
    assert DataSpec("lunar", Path("x")).task == "segmentation"


def test_from_config_reads_data_keys_only(tmp_path: Path) -> None:
    config = {"dataset": "cifar10", "data_dir": None, "classes": 4, "lr": 1e-3}
    spec = DataSpec.from_config(config, tmp_path)
    assert spec.path == tmp_path / "cifar10-images" and spec.classes == 4
    # Missing data keys take the flat config's defaults.
    assert DataSpec.from_config({"lr": 1}, tmp_path) == DataSpec(
        "tiny_imagenet", tmp_path / "tiny-imagenet-200"
    )


def test_data_dir_has_one_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """data_dir: a folder under the data root, or an absolute path; None: the default folder."""
    assert (
        resolve_data_dir("lunar", "MARS_ROCKS_BINARY", tmp_path) == tmp_path / "MARS_ROCKS_BINARY"
    )
    assert resolve_data_dir("lunar", None, tmp_path) == tmp_path / "MOON_SEGMENTATION_BINARY"
    assert resolve_data_dir("lunar", "", tmp_path) == tmp_path / "MOON_SEGMENTATION_BINARY"
    elsewhere = tmp_path / "elsewhere" / "moon"
    assert resolve_data_dir("lunar", str(elsewhere), tmp_path / "root") == elsewhere
    monkeypatch.setenv("ARCHSWEEP_DATA", str(tmp_path / "env"))
    spec = DataSpec.from_config({"dataset": "lunar", "data_dir": "MARS_ROCKS_BINARY"})
    assert spec.path == tmp_path / "env" / "MARS_ROCKS_BINARY"
    with pytest.raises(DataError, match=r"data_dir=3 is not valid; use a folder name"):
        resolve_data_dir("lunar", 3, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"unknown dataset 'moon'; valid: .*lunar"):
        resolve_data_dir("moon", None, tmp_path)


def test_select_first_n_and_seeded_draw() -> None:
    assert select_classes(IDS, 3, None) == ["c0", "c1", "c2"]
    drawn = select_classes(IDS, 4, 11)
    assert drawn == select_classes(IDS, 4, 11)  # reproducible
    assert drawn != select_classes(IDS, 4, 12)
    assert drawn == sorted(drawn, key=IDS.index) and len(set(drawn)) == 4
    assert select_classes(IDS, None, None) == IDS


def test_select_list_keeps_order_and_accepts_aliases() -> None:
    assert select_classes(IDS, ("c5", "goldfish"), None, aliases={"goldfish": "c1"}) == ["c5", "c1"]


def test_select_errors_name_the_bad_class() -> None:
    with pytest.raises(DataError, match=r"'zz'.*valid ids include c0, c1"):
        select_classes(IDS, ("c1", "zz"), None, where="wnids.txt")
    with pytest.raises(DataError, match="classes=11 but x has only 10"):
        select_classes(IDS, 11, None, where="x")
