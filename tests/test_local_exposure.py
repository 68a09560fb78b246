"""A local run's Ray (no --address) listens on 127.0.0.1 only and refuses clients without the run's
token (orchestrator/ray_setup.py).

Measured on a real run: every listening socket of the run's process tree (driver, gcs_server,
raylet, runtime-env agent, progress board, trials, idle workers) is on 127.0.0.1; and once the
stage's progress board is up, each Ray server then listening refuses a client with no token or
another token (gRPC UNAUTHENTICATED, HTTP 401/403) and answers one with the run's token (read
from gcs_server's environment, as only this user or root can). Before the change the gRPC servers
listened on all interfaces (`*:PORT`), the runtime-env agent on the routed address, and all of
them answered anyone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

from trainables.data import write_tiny_imagenet

REPO = Path(__file__).resolve().parents[1]

STUDY = """
from orchestrator.study import Stage, Study
study = Study(name="exposure", trainable="classification",
              base={"dataset": "tiny_imagenet", "classes": 3, "epochs": 2, "batch_size": 16,
                    "max_batches": 1, "model": "resnet", "channels": (8,), "blocks": (1,),
                    "stem": "cifar"},
              stages=[Stage("only", label="E", scheduler="fifo", evaluate=True)])
"""

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")

# One harmless, read-only call per Ray gRPC service; a port serves the ones not UNIMPLEMENTED.
READ_ONLY = (
    "/ray.rpc.NodeInfoGcsService/GetClusterId",  # gcs_server
    "/ray.rpc.NodeManagerService/GetNodeStats",  # raylet
    "/ray.rpc.CoreWorkerService/NumPendingTasks",  # driver, actors, workers
)
# The raylet's object manager port; only ever sent without a valid token (refused unread).
REFUSED_ONLY = ("/ray.rpc.ObjectManagerService/Pull",)


def listening(pids: list[int]) -> dict[tuple[str, int], str]:
    """(address, port) -> process name for the TCP sockets these processes listen on; the
    first pid (the run's own process, Ray's driver) is named "driver"."""
    import ray  # noqa: F401, I001  (puts Ray's bundled psutil on sys.path)
    import psutil

    found = {}
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    name = "driver" if pid == pids[0] else proc.name()
                    found[(conn.laddr.ip, conn.laddr.port)] = name
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def process_tree(root: int) -> list[int]:
    import ray  # noqa: F401, I001
    import psutil

    try:
        return [root] + [p.pid for p in psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def reach(ip: str) -> str:
    """Where a client reaches a socket bound to `ip` (all interfaces: by loopback)."""
    ip = ip.removeprefix("::ffff:")
    return "127.0.0.1" if ip in ("::", "0.0.0.0") else ip


def grpc_codes(host: str, port: int, token: str | None) -> dict[str, str]:
    """Status of each probe call on host:port, sent with `token` (None: no token at all)."""
    import grpc

    metadata = [] if token is None else [("authorization", f"Bearer {token}")]
    methods = READ_ONLY + (REFUSED_ONLY if token is None or token == "0" * 64 else ())
    codes = {}
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for method in methods:
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            try:
                call(b"", timeout=5, metadata=metadata)
                codes[method] = "OK"
            except grpc.RpcError as err:
                codes[method] = err.code().name
    return codes


def http_status(host: str, port: int, token: str | None) -> int:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    request = urllib.request.Request(
        f"http://{host}:{port}/get_runtime_envs_info", data=b"", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except urllib.error.URLError:
        return 0


def run_token(pids: list[int]) -> str | None:
    """The token the run's Ray was started with, from gcs_server's environment (same user)."""
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "gcs_server":
                continue
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            if entry.startswith(b"RAY_AUTH_TOKEN="):
                return entry.split(b"=", 1)[1].decode()
    return None


def gone(codes: dict) -> bool:
    answers = [codes["none"], codes["other"], codes["run"]]
    flat = [c for a in answers for c in (a.values() if isinstance(a, dict) else [a])]
    return "UNAVAILABLE" in flat or 0 in flat


def probe(sockets: dict[tuple[str, int], str], token: str | None) -> dict[str, dict]:
    """Each server of the run, asked with no token, another token and the run's token."""
    results = {}
    for (ip, port), name in sockets.items():
        key, host = f"{name}:{port}", reach(ip)
        if "RuntimeEnv" in name:  # an HTTP server
            results[key] = {
                "none": http_status(host, port, None),
                "other": http_status(host, port, "0" * 64),
                "run": http_status(host, port, token) if token else None,
            }
        else:
            results[key] = {
                "none": grpc_codes(host, port, None),
                "other": grpc_codes(host, port, "0" * 64),
                "run": grpc_codes(host, port, token) if token else {},
            }
    return results


def test_local_run_listens_on_loopback_only_and_refuses_clients_without_its_token(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    write_tiny_imagenet(data / "tiny-imagenet-200", n_classes=3, train_per_class=8, val_per_class=4)
    study = tmp_path / "exposure.py"
    study.write_text(textwrap.dedent(STUDY))
    home = tmp_path / "home"  # ray.init would write ~/.ray/auth_token here if it made one
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in AUTH_ENV}
    env.update(ARCHSWEEP_CACHE=str(tmp_path / "cache"), HOME=str(home))
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator.run",
                str(study),
                "--data-root",
                str(data),
                "--storage",
                str(tmp_path / "runs"),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        seen: dict[tuple[str, int], str] = {}
        probes: dict[str, dict] | None = None
        deadline = time.monotonic() + 240
        while run.poll() is None and time.monotonic() < deadline:
            pids = process_tree(run.pid)
            now = listening(pids)
            seen.update(now)
            names = set(now.values())
            if probes is None and {"gcs_server", "ray::ProgressBoard"} <= names:
                probes = probe(now, run_token(pids))
                seen.update(listening(pids))
            time.sleep(0.5)
        if run.poll() is None:
            run.kill()
    assert run.wait(30) == 0, log.read_text()[-3000:]

    names = set(seen.values())
    assert {"gcs_server", "raylet", "ray::ProgressBoard"} <= names, seen
    # Reachable from this machine only: no socket on a routable address or on all interfaces.
    exposed = sorted(
        f"{name} {ip}:{port}" for (ip, port), name in seen.items() if ip not in LOOPBACK
    )
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"

    # And on this machine, only with the run's token (another user has no way to it).
    assert probes is not None, f"the stage's progress board never listened; sockets: {seen}"
    checked = []
    for server, codes in probes.items():
        if gone(codes):  # exited while being asked (a finished trial's worker)
            continue
        if "RuntimeEnv" in server:
            assert codes["none"] == 401 and codes["other"] == 403, (server, codes)
            assert codes["run"] == 200, (server, codes)
        else:
            served = [m for m, c in codes["none"].items() if c != "UNIMPLEMENTED"]
            assert served, f"{server} answers none of the probes: {codes}"
            for method in served:
                assert codes["none"][method] == "UNAUTHENTICATED", (server, codes)
                assert codes["other"][method] == "UNAUTHENTICATED", (server, codes)
                if method in READ_ONLY:
                    assert codes["run"][method] == "OK", (server, codes)
        checked.append(server.rsplit(":", 1)[0])
    for server in ("gcs_server", "raylet", "driver", "ray::RuntimeEnvAgent", "ray::ProgressBoard"):
        assert server in checked, f"{server} was not probed: {probes}"
    assert checked.count("raylet") == 2, probes  # node manager and object manager

    # Everything still works with authentication on: trials, checkpoints, the evaluation task;
    # and nothing was written to the user's ~/.ray.
    record = json.loads((tmp_path / "runs" / "exposure" / "study.json").read_text())
    (trial,) = record["stages"][0]["trials"]
    assert trial["status"] == "completed", trial
    best = tmp_path / "runs" / "exposure" / trial["best_checkpoint"] / "checkpoint.pt"
    assert best.is_file(), trial
    assert record["evaluations"].get("only"), record["evaluations"]
    assert not (home / ".ray").exists()
