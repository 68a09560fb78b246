"""Start or join Ray, safely, with its chatter sent to a log file.

Ray's dashboard and job APIs run arbitrary code for whoever reaches them, so a local Ray is
started with the dashboard off and nothing listening beyond 127.0.0.1. Remote clusters are
reached through `ray dashboard cluster/gpu.yaml` (an SSH tunnel), never an open port.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# Must be set before Ray Tune builds its default callbacks: archsweep writes TensorBoard itself,
# and Ray's TBX logger would add a second, differently named stream of the same scalars.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# The old-style reporter honours verbose=0; the new one prints tables regardless.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import ray


def log_to_file(log_path: Path) -> None:
    """Send Ray's Python loggers to `log_path` instead of the console."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False


def start_ray(
    address: str | None, num_cpus: int | None = None, num_gpus: int | None = None
) -> None:
    """Join `address` ("auto" = the cluster this machine belongs to) or start a local Ray."""
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return
    ray.init(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )
