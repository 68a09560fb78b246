"""The driver's contact with Ray core: start or join Ray, its logs, and one-off remote tasks.

Ray Tune itself is driven from orchestrator/tuner.py; everything else the driver asks of Ray goes
through here (trainables/ray_io.py is the trial side's counterpart). Checked against Ray 2.58.

Ray's dashboard and job APIs run arbitrary code for whoever reaches them, so a local Ray is
started with the dashboard off and its node address on 127.0.0.1. Remote clusters are reached
through `ray dashboard cluster/gpu.yaml` (an SSH tunnel), never an open port.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.study import StudyError

# Read by Ray Tune when a Tuner builds its callbacks and output, so setting them in
# configure_ray_environment() (before the first Tuner) is enough; nothing is set at import time.
RAY_ENVIRONMENT = {
    # archsweep writes TensorBoard itself; Ray's TBX logger would add a second, differently
    # named stream of the same scalars.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    # The old-style reporter honours verbose=0; the new one prints tables regardless.
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
}


def configure_ray_environment() -> None:
    """Ray settings archsweep relies on; a value the user exported wins."""
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


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
    import ray

    configure_ray_environment()
    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return
    ray.init(
        address="local",  # a new Ray of our own; a bare init joins any Ray on this host
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        dashboard_host="127.0.0.1",
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=False,
    )


def check_address(address: str | None, timeout_s: float = 10.0) -> None:
    """Refuse an explicit HOST:PORT that does not answer, instead of Ray retrying forever."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as err:
        raise StudyError(
            f"--address {address}: no Ray head answers there ({err}); start one with "
            "`ray start --head` or `ray up cluster/gpu.yaml`, or drop --address to run locally"
        ) from None


def check_resources(cpus: float, gpus: float, joined: bool) -> None:
    """A trial that needs more than the whole cluster has would wait forever.

    A local Ray cannot grow, so the request is refused; a joined cluster may autoscale into
    it, so one line says what the study is waiting for.
    """
    import ray

    have = ray.cluster_resources()
    missing = [
        f"{need:g} {name} per trial, cluster has {have.get(key, 0):g}"
        for name, key, need in (("CPU", "CPU", cpus), ("GPU", "GPU", gpus))
        if need > have.get(key, 0)
    ]
    if not missing:
        return
    if not joined:
        raise StudyError(
            "trials can never start: " + "; ".join(missing) + ". Lower --cpus-per-trial / "
            "--gpus-per-trial, or join a cluster that has them with --address"
        )
    print("waiting for resources (the cluster may scale up): " + "; ".join(missing), flush=True)


def run_task(fn: Callable[..., Any], *args: Any, cpus: float, gpus: float) -> Any:
    """Run `fn(*args)` as a Ray task with a trial's resources and wait for its result.

    Used for test-set evaluation, so that on a cluster it runs where the trials ran (a GPU
    worker), not on the head node's CPU.
    """
    import ray

    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=1)(fn)
    return ray.get(remote.remote(*args))
