"""The driver's side of the data layer: one decoded bundle per data config, and its summary.

```python
cache = BundleCache(data_root)             # --data-root DIR, $ARCHSWEEP_DATA or ./data
bundle = cache.get(config)                 # the flat trial config; prints one summary line
record["data"] = data_summary(bundle)      # what study.json records about the data
```
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .bundle import DataBundle, load_bundle
from .download import ensure_downloaded
from .errors import DataError
from .spec import DataSpec


class BundleCache:
    """Decoded bundles of one driver, one per distinct data config.

    The data keys of a flat config (`DATA_DEFAULTS`: dataset, data_dir, classes, class_seed,
    image_size, val_fraction, test_fraction, split_seed, test_split) select the bundle; other keys
    are ignored, missing ones take their defaults. ``data_dir`` has one meaning (see
    `resolve_data_dir`): the data set's folder relative to `data_root`
    (``data_dir="MARS_ROCKS_BINARY"`` reads ``<data_root>/MARS_ROCKS_BINARY``), or an absolute
    path; None falls back to the data set's default folder under `data_root`
    (``<data_root>/MOON_SEGMENTATION_BINARY`` for lunar).

    Args:
        data_root: the folder that holds the data set folders.
        cache_dir: `load_bundle`'s decode cache; None means ``$ARCHSWEEP_CACHE`` or
            ``~/.cache/archsweep``.
        log: where the one-line summary of each new bundle goes.
    """

    def __init__(
        self,
        data_root: str | os.PathLike[str],
        cache_dir: Path | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.data_root = Path(data_root).expanduser()
        self.cache_dir = cache_dir
        self.log = log or (lambda line: print(line, flush=True))
        self.bundles: dict[DataSpec, DataBundle] = {}

    def spec(self, config: Mapping[str, Any]) -> DataSpec:
        """The DataSpec of `config`'s data keys, with ``data_dir`` resolved against the root."""
        return DataSpec.from_config(config, self.data_root)

    def get(self, config: Mapping[str, Any]) -> DataBundle:
        """The bundle of `config`, decoded (and downloaded if missing) on first use.

        Raises:
            DataError: the data is missing or malformed; the message ends with the data root and
                how to set it.
        """
        spec = self.spec(config)
        if spec not in self.bundles:
            t0 = time.perf_counter()
            try:
                ensure_downloaded(spec)  # no-op when present; offline: a DataError saying where
                bundle = load_bundle(spec, self.cache_dir)
            except DataError as err:
                raise DataError(
                    f"{err}\n(data root: {self.data_root}; set it with --data-root DIR or "
                    "$ARCHSWEEP_DATA, default ./data)"
                ) from None
            bundle.data_root = self.data_root
            self.bundles[spec] = bundle
            self.log(summary_line(data_summary(bundle), time.perf_counter() - t0))
        return self.bundles[spec]


def data_summary(bundle: DataBundle) -> dict[str, Any]:
    """What study.json records about a stage's data (JSON-ready).

    Keys: dataset (registered name), data_dir (the folder actually read), folder (its name, e.g.
    MARS_ROCKS_BINARY for a lunar-layout run on Mars tiles), task, class_names, targets ("10
    classes" or "binary masks"), train / val / test (sample counts), image_size.
    """
    path = bundle.path
    if bundle.task == "segmentation":
        targets = "binary masks"
    else:
        n = len(bundle.class_names)
        targets = f"{n} class" if n == 1 else f"{n} classes"
    return {
        "dataset": bundle.name,
        "data_dir": str(path) if path is not None else None,
        # Where --data-root pointed (absolute): a replay of the run reads its data from there.
        "data_root": str(bundle.data_root.absolute()) if bundle.data_root is not None else None,
        "folder": path.resolve().name if path is not None else None,
        "task": bundle.task,
        "class_names": list(bundle.class_names),
        "targets": targets,
        "train": len(bundle.train),
        "val": len(bundle.val),
        "test": len(bundle.test),
        "image_size": bundle.image_size,
    }


def summary_line(summary: Mapping[str, Any], seconds: float) -> str:
    """``data: <name> from <path>: N train / N val / N test, <targets> (<s> s)``."""
    return (
        f"data: {summary['dataset']} from {summary['data_dir']}: {summary['train']} train / "
        f"{summary['val']} val / {summary['test']} test, {summary['targets']} ({seconds:.1f} s)"
    )
