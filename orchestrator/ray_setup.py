"""The driver's contact with Ray core: start or join Ray, its logs, and one-off remote tasks.

Ray Tune itself is driven from orchestrator/tuner.py; everything else the driver asks of Ray goes
through here (trainables/ray_io.py is the trial side's counterpart). Checked against Ray 2.58.

Whoever can talk to a Ray's servers can run code as the user who started it, so a local Ray
(no --address) is closed two ways; tests/test_local_exposure.py checks both on a real run.

- Loopback only. Left alone, Ray 2.58 on Linux takes the address of the default route as its
  node address; its C++ gRPC servers (GCS, the raylet's two ports, the core worker of the
  driver, of every actor and of every idle worker) then listen on all interfaces (`ss -ltnp`:
  `*:PORT`) and the runtime-env agent on that routed address. With the node address 127.0.0.1,
  Ray binds all of them to 127.0.0.1 (`::ffff:127.0.0.1:PORT`, `127.0.0.1:PORT`); by Ray's
  code the dashboard agent and metrics exporter of a `ray[default]` install do too (not
  installed here, so not measured). `ray.init(_node_ip_address="127.0.0.1")` cannot ask for
  it: ray.init turns 127.0.0.1 into the routed address. What Ray does on macOS and Windows
  (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0) does: see loopback_node().
- Token authentication (RAY_AUTH_MODE=token, Ray >= 2.52) with a new random token per run, in
  this process's environment only, never in ~/.ray: Ray's processes inherit it from here, and
  every other client (another user of this machine) is refused: see use_run_token().

(Ray's Unix sockets, /tmp/ray/session_*/sockets/{raylet,plasma_store}, are srwxr-xr-x under
the usual umask 022: other users cannot connect to them either.)

Both reach into Ray (ray._private.ray_constants, ray._raylet): the only private Ray names the
driver uses, here, pinned by that test. The dashboard stays off. A joined cluster (--address)
keeps the settings it was started with, and this process's environment is left alone.
Remote clusters are reached through `ray dashboard cluster/gpu.yaml` (an SSH tunnel), never an
open port.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
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
    # A log line that cannot be written (a full disk) is dropped, not printed to the console
    # as a "--- Logging error ---" traceback per line; the driver names the full disk once.
    logging.raiseExceptions = False
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
    use_run_token()
    with loopback_node(), sigterm_held_from_ray():
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


@contextlib.contextmanager
def sigterm_held_from_ray() -> Iterator[None]:
    """Ray's processes (GCS, raylet, and through the raylet every worker) start with SIGTERM
    blocked, as Ray itself starts them with SIGINT blocked.

    A `kill -- -PGID` (or a terminal closing) reaches every process of the run's group. Left
    alone, the GCS and raylet die of it first and the driver's core worker then ends the
    process (exit 1) before Tune has saved the experiment; the trials die mid-epoch as errors.
    With SIGTERM blocked in them, only the driver acts on it (as on Ctrl-C): Tune saves, stops
    the trials, and Ray is shut down at exit. A signal mask survives fork and exec, so the
    children inherit it from this thread; the driver's own SIGTERM, held while Ray starts, is
    delivered to the driver's handler of before ray.init when the mask is put back.
    """
    import signal

    held = hasattr(signal, "pthread_sigmask")
    before = signal.getsignal(signal.SIGTERM)
    if held:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        # ray.init put in its own SIGTERM handlers (Python's sys.exit(15), then its core's C
        # stack dump that ends in abort()): the one from before comes back first, so that a
        # SIGTERM held while Ray started reaches it when the mask is lifted.
        if before is not None:
            signal.signal(signal.SIGTERM, before)
        if held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def use_run_token() -> None:
    """Turn on Ray's token authentication with a new random token (a local Ray only).

    Set in os.environ before ray.init: the GCS and raylet are started from this process and
    inherit it, and the raylet passes it to every worker (trials, the progress board, the
    evaluation task). With the token in RAY_AUTH_TOKEN, ray.init neither reads ~/.ray/auth_token
    nor writes one there. Ray read RAY_AUTH_* once, when it was imported, so its token cache and
    config are read again, as Ray's own tests do (ray/_private/authentication_test_utils.py).
    The token lives as long as this process; like any environment, only this user and root can
    read it (/proc/PID/environ). A Ray without token authentication (< 2.52) is left as it is.
    """
    try:
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]
    except ImportError:
        return
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # 256 bits, as `ray get-auth-token`
    AuthenticationTokenLoader.instance().reset_cache()
    Config.initialize("")


@contextlib.contextmanager
def loopback_node() -> Iterator[None]:
    """While ray.init starts a local Ray, its node address is 127.0.0.1, so Ray binds loopback.

    ray.init takes the node address from services.get_node_ip_address(), which returns
    127.0.0.1 where ray_constants.ENABLE_RAY_CLUSTER is false (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
    read when Ray is imported, hence the constant here). Once ray.init has returned, the address
    comes from the running node; the constant is put back so that a later join of a real cluster
    from this process works as before.
    """
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Refuse an explicit HOST:PORT where no Ray GCS answers, within seconds, instead of Ray
    retrying "Failed to connect to GCS" forever (a non-Ray service) or for half a minute with
    tracebacks (an unroutable host)."""
    if not address or address == "auto" or "://" in address:
        return
    host, _, port_text = address.rpartition(":")
    try:
        port = int(port_text)
        if not host or not 0 < port < 65536:
            raise ValueError
    except ValueError:
        raise StudyError(
            f"--address {address!r} must be HOST:PORT with a port 1-65535 (Ray's GCS port, "
            f"6379 by default), e.g. --address 127.0.0.1:6379, or 'auto'"
        ) from None
    verdict = gcs_verdict(address, timeout_s)
    if verdict is not None:
        raise StudyError(
            f"--address {address}: {verdict}; start a Ray head with `ray start --head` (or "
            "`ray up cluster/gpu.yaml`) and give its GCS address, or drop --address to run "
            "locally"
        )


def gcs_verdict(address: str, timeout_s: float) -> str | None:
    """None when a Ray GCS answers at `address`, else what answered instead.

    One gRPC call of the GCS's own health check (NodeInfoGcsService/CheckAlive, an empty
    request). A GCS answers it, or refuses it for want of the cluster's auth token (Ray's
    token authentication): both are a GCS. A web server fails the HTTP/2 handshake, another
    gRPC server (or a proxy) answers UNIMPLEMENTED, a closed port refuses the connection, and
    an unroutable host lets the deadline pass.
    """
    import grpc

    channel = grpc.insecure_channel(address)
    check = channel.unary_unary("/ray.rpc.NodeInfoGcsService/CheckAlive")
    try:
        check(b"", timeout=timeout_s)
        return None
    except grpc.RpcError as err:
        code, details = err.code(), (err.details() or "").strip()
    finally:
        channel.close()
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return None
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"no answer within {timeout_s:g} s (an unreachable host, or a firewall)"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"a gRPC service answers, but not a Ray GCS ({details})"
    return f"no Ray head answers there ({details.rpartition('last error: ')[2] or code.name})"


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


def run_on_every_node(fn: Callable[..., Any], *args: Any, timeout_s: float = 120) -> dict:
    """`fn(*args)` once on every alive node (a zero-CPU task pinned to it): {node id: result}.
    Used to check, before anything trains, what each node sees (the run's storage)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(num_cpus=0, max_retries=0)(fn)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    refs = [
        remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            *args
        )
        for node in nodes
    ]
    return dict(zip(nodes, ray.get(refs, timeout=timeout_s), strict=True))
