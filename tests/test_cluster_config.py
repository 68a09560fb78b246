"""cluster/*.yaml pass Ray's own checks and keep the promises cluster/README.md makes.

`ray up` runs `prepare_config` then `validate_config` (ray.autoscaler._private.util) before it
touches a cloud; the raw file is also checked against Ray's schema, which rejects unknown
top-level keys (a top-level `min_workers` used to slip into local.yaml). The rest are the points
a user would otherwise find out on a paid cluster: image tag = pinned Ray, what rsync copies,
where the data set goes, which ports open. Ray's fake_multinode provider is not used: the pinned
wheel does not ship its defaults file (`ray up` fails with FileNotFoundError), and `ray down`
runs a bare `ray stop` on the "head", which is this machine.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
CONFIGS = ["gpu.yaml", "local.yaml"]
STAY_HOME = {".venv", "runs", "data", ".cache"}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CLUSTER / name).read_text())


def pinned(package: str) -> str:
    """The version constraints.txt pins for `package`."""
    for line in (REPO / "constraints.txt").read_text().splitlines():
        name, sep, version = line.partition("==")
        if sep and name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"constraints.txt pins no {package}")


def min_python() -> str:
    """'311' from pyproject's requires-python '>=3.11'."""
    text = (REPO / "pyproject.toml").read_text()
    major, minor = re.search(r'requires-python\s*=\s*">=(\d+)\.(\d+)"', text).groups()
    return major + minor


def ray_schema() -> dict[str, Any]:
    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def start_commands(config: dict[str, Any]) -> list[str]:
    return config["head_start_ray_commands"] + config["worker_start_ray_commands"]


@pytest.mark.parametrize("name", CONFIGS)
def test_raw_file_matches_ray_schema(name: str) -> None:
    jsonschema.validate(load(name), ray_schema())


@pytest.mark.parametrize("name", CONFIGS)
def test_ray_prepares_and_validates(name: str) -> None:
    prepared = prepare_config(copy.deepcopy(load(name)))
    validate_config(prepared)
    workers = [t for t in prepared["available_node_types"] if t != prepared["head_node_type"]]
    assert workers or name == "local.yaml", f"{name}: no worker node type"


def test_validators_reject_top_level_min_workers() -> None:
    """The check above can fail: the old local.yaml's top-level min_workers is refused."""
    config = load("local.yaml") | {"min_workers": 1}
    with pytest.raises(jsonschema.ValidationError, match="min_workers"):
        jsonschema.validate(config, ray_schema())


def test_installed_ray_is_the_pinned_one() -> None:
    """The validators above are only Ray 2.58's if the test runs against the pin."""
    assert ray.__version__ == pinned("ray")


def test_docker_image_matches_pinned_ray_and_python() -> None:
    docker = load("gpu.yaml")["docker"]
    expected = f"rayproject/ray:{pinned('ray')}-py{min_python()}-gpu"
    assert docker["image"] == expected
    assert not {"head_image", "worker_image"} & docker.keys(), "one image for every node"


def test_gpus_only_requested_on_gpu_workers() -> None:
    docker = load("gpu.yaml")["docker"]
    assert any("--gpus all" in opt for opt in docker["worker_run_options"])
    shared = docker.get("run_options", []) + docker.get("head_run_options", [])
    assert not any("--gpus" in opt for opt in shared), "docker --gpus fails on the CPU head"


def test_ami_is_named_not_latest_dlami() -> None:
    text = (CLUSTER / "gpu.yaml").read_text()
    assert "latest_dlami" not in re.sub(r"#.*", "", text)
    assert "aws ec2 describe-images" in text and "Deep Learning Base" in text
    for node_type in load("gpu.yaml")["available_node_types"].values():
        image = node_type["node_config"]["ImageId"]
        assert re.fullmatch(r"ami-([0-9a-f]{8}|[0-9a-f]{17}|REPLACE-[a-z-]+)", image), image


@pytest.mark.parametrize("name", CONFIGS)
def test_rsync_keeps_venv_runs_and_data_home(name: str) -> None:
    config = load(name)
    assert set(config["rsync_exclude"]) >= STAY_HOME
    assert "." in config["file_mounts"].values(), "the repo itself is mounted"


@pytest.mark.parametrize("name", CONFIGS)
def test_data_set_goes_to_the_head_only(name: str) -> None:
    config = load(name)
    everywhere = config["setup_commands"] + config.get("worker_setup_commands", [])
    assert any("tiny-imagenet-200" in c for c in config["head_setup_commands"])
    assert not any("tiny-imagenet" in c or "ARCHSWEEP_DATA" in c for c in everywhere)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_node_installs_from_constraints_with_ray_default(name: str) -> None:
    installs = [c for c in load(name)["setup_commands"] if "pip install" in c]
    assert installs and all("-c constraints.txt" in c for c in installs)
    assert any("'.[cluster]'" in c for c in installs)
    # The cluster extra is ray[default] (dashboard, `ray job submit`), every package pinned.
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    cluster = project["optional-dependencies"]["cluster"]
    assert any(dep.startswith("ray[default") for dep in cluster)
    pins = (REPO / "constraints.txt").read_text().lower().replace("_", "-")
    for package in ("ray==", "aiohttp==", "opencensus==", "prometheus-client==", "boto3=="):
        assert package in pins, f"{package[:-2]} is not pinned in constraints.txt"


@pytest.mark.parametrize("name", CONFIGS)
def test_dashboard_on_loopback_and_token_auth(name: str) -> None:
    config = load(name)
    head = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert head and all("--dashboard-host=127.0.0.1" in c for c in head)
    assert all("RAY_AUTH_MODE=token" in c for c in start_commands(config) if "ray start" in c)
    assert "~/.ray/auth_token" in config["file_mounts"].values()


def test_pinned_ray_supports_token_auth() -> None:
    """RAY_AUTH_MODE=token only means something where Ray implements it (>= 2.52)."""
    from ray._raylet import AuthenticationMode

    assert AuthenticationMode.TOKEN is not None


def test_security_group_opens_ssh_only() -> None:
    provider = load("gpu.yaml")["provider"]
    rules = provider["security_group"].get("IpPermissions", [])
    assert all(r.get("FromPort") == r.get("ToPort") == 22 for r in rules), rules


def test_workers_can_write_the_runs_bucket() -> None:
    node_types = load("gpu.yaml")["available_node_types"]
    assert all("IamInstanceProfile" in t["node_config"] for t in node_types.values())


def readme_job_submit() -> list[str]:
    """The README's `ray job submit` command, split the way a shell would."""
    text = (CLUSTER / "README.md").read_text()
    block = re.search(r"```bash\n(ray job submit .*?)```", text, re.S)
    assert block, "cluster/README.md shows no `ray job submit` block"
    return shlex.split(block.group(1).replace("\\\n", " "))


def test_readme_job_command_sets_data_and_excludes() -> None:
    from ray.dashboard.modules.dashboard_sdk import parse_runtime_env_args
    from ray.runtime_env import RuntimeEnv

    argv = readme_job_submit()
    env = parse_runtime_env_args(
        runtime_env_json=argv[argv.index("--runtime-env-json") + 1],
        working_dir=argv[argv.index("--working-dir") + 1],
    )
    RuntimeEnv(**env)  # Ray's own check of the fields
    assert env["working_dir"] == "."
    assert set(env["excludes"]) >= STAY_HOME
    assert env["env_vars"]["ARCHSWEEP_DATA"] == "/home/ray/data"
    assert "--storage" in argv and argv[argv.index("--storage") + 1].startswith("s3://")


def test_readme_walks_through_the_cluster_lifecycle() -> None:
    text = (CLUSTER / "README.md").read_text()
    for step in (
        "ray up cluster/gpu.yaml",
        "ray dashboard cluster/gpu.yaml",
        "ray job submit",
        "tensorboard --logdir s3://",
        "python -m analysis.report s3://",
        "ray down cluster/gpu.yaml",
        "RAY_AUTH_MODE=token",
        "## Cost",
        "## Security model",
    ):
        assert step in text, f"cluster/README.md lacks {step!r}"
