"""archsweep's data layer: readers, the on-disk cache, splits, batched augmentation, loaders.

```python
from trainables.data import DataSpec, load_bundle, TensorLoader, AugmentConfig
bundle = load_bundle(DataSpec("tiny_imagenet", classes=10, image_size=None))
loader = TensorLoader(bundle.train, 128, "cuda", augment=AugmentConfig(hflip=True, crop_padding=4),
                      mean=bundle.mean, std=bundle.std)
```
"""

from .augment import AugmentConfig, augment_batch
from .bundle import DataBundle, Split, channel_stats, load_bundle
from .cache import default_cache_dir
from .download import ensure_downloaded
from .errors import DataError, DataWarning
from .loader import TensorLoader
from .segmentation import binarize_mask, list_pairs
from .spec import DATASETS, DEFAULT_DIRS, DataSpec, dataset_dir, default_data_root
from .split import stratified_split
from .synthetic import write_image_folder, write_lunar, write_tiny_imagenet
from .tiny_imagenet import TinyImageNetDataset

__all__ = [
    "DATASETS",
    "DEFAULT_DIRS",
    "AugmentConfig",
    "DataBundle",
    "DataError",
    "DataSpec",
    "DataWarning",
    "Split",
    "TensorLoader",
    "TinyImageNetDataset",
    "augment_batch",
    "binarize_mask",
    "channel_stats",
    "dataset_dir",
    "default_cache_dir",
    "default_data_root",
    "ensure_downloaded",
    "list_pairs",
    "load_bundle",
    "stratified_split",
    "write_image_folder",
    "write_lunar",
    "write_tiny_imagenet",
]
