"""Fixtures of the RL tests: a private Ray head on loopback (for `ray job submit`) and CPU-mode run inputs.

The head is started by this session with its own ports and temp dir, and stopped by the PIDs it started
(never `ray stop`: other users of the machine may run Ray too).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
PYTHON = sys.executable
RAY_BIN = str(pathlib.Path(PYTHON).with_name("ray"))
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_ports(n: int) -> list[int]:
    """n distinct free ports (all held open while choosing, so the OS cannot hand out one twice)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class RayHead:
    """`ray start --head --block` on 127.0.0.1 with private ports, placeholder GPUs and a private temp dir. `env`
    (the patched OpenRLHF and this checkout on PYTHONPATH) is the head's, so its jobs' drivers start with it."""

    def __init__(self, env: dict, num_gpus: int = 2, num_cpus: int = 8):
        self.env = {**env, **LOOPBACK_ENV}
        # the unix socket paths under the temp dir must stay short (< 108 bytes)
        self.temp_dir = tempfile.mkdtemp(prefix="rlray", dir="/tmp")
        self.dashboard_port, self.gcs_port, *ports = free_ports(7)
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.log = open(os.path.join(self.temp_dir, "head.log"), "w")
        cmd = [RAY_BIN, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(self.gcs_port),
               "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
               "--dashboard-port", str(self.dashboard_port), "--dashboard-agent-listen-port", str(ports[0]),
               "--dashboard-agent-grpc-port", str(ports[1]), "--runtime-env-agent-port", str(ports[2]),
               "--ray-client-server-port", str(ports[3]), "--metrics-export-port", str(ports[4]),
               "--num-cpus", str(num_cpus), "--num-gpus", str(num_gpus), "--temp-dir", self.temp_dir,
               "--disable-usage-stats"]
        self.process = subprocess.Popen(cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray head exited with {self.process.returncode}: {self.read_log()}")
            try:
                with urllib.request.urlopen(f"{self.address}/api/version", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"ray head did not come up in 120 s: {self.read_log()}")

    def read_log(self) -> str:
        return pathlib.Path(self.temp_dir, "head.log").read_text()[-3000:]

    def submit(self, entrypoint: list[str], env_vars: dict | None = None, timeout: float = 600) \
            -> subprocess.CompletedProcess:
        """`ray job submit` (waits for the job, streams its logs); env_vars go in the job's runtime_env."""
        cmd = [RAY_BIN, "job", "submit", "--address", self.address]
        if env_vars:
            cmd += ["--runtime-env-json", json.dumps({"env_vars": env_vars})]
        return subprocess.run(cmd + ["--"] + entrypoint, env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(REPO))

    def pids(self) -> list[int]:
        import psutil

        try:
            root = psutil.Process(self.process.pid)
            return [root.pid] + [p.pid for p in root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Terminate exactly the processes this head started (its process tree), by PID."""
        import psutil

        procs = []
        for pid in self.pids():
            try:
                procs.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                pass
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=20)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head(rl_env):
    head = RayHead(rl_env())
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def rl_7b_recipe_argv(tmp_path_factory, rl_env) -> list[str]:
    """The launcher arguments `recipes/rl_7b.sh` passes with its defaults: the script runs with a stand-in for
    `$PYTHON` that only writes its arguments down (nothing is imported or started)."""
    work = tmp_path_factory.mktemp("rl_7b_argv")
    shim, out = work / "python", work / "argv"
    shim.write_text('#!/bin/sh\nfor a in "$@"; do printf \'%s\\0\' "$a"; done > "$ARGV_OUT"\n')
    shim.chmod(0o755)
    subprocess.run(["bash", str(REPO / "recipes" / "rl_7b.sh")], check=True, timeout=60,
                   env=rl_env(PYTHON=str(shim), ARGV_OUT=str(out), OUT=str(work / "out")))
    argv = out.read_text().split("\0")[:-1]
    assert argv[:2] == ["-m", "openrlhf_ext.train"], argv[:2]
    return argv[2:]


@pytest.fixture(scope="session")
def tiny_rl_inputs(tmp_path_factory, tiny_model_dir):
    """Tiny model, toy prompts (converted by openrlhf_ext.data) and forced-turn schedules for CPU-mode runs."""
    from openrlhf_ext.cpu_demo import prepare

    out = tmp_path_factory.mktemp("rl_inputs")
    return prepare(str(out), model_cache=str(pathlib.Path(tiny_model_dir).parent))
