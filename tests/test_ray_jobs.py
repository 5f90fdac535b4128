"""A real Ray head on 127.0.0.1, a `nas run backend=ray` submitted to it with `ray job submit`."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nas.run.store import read_rows
from tests.ports import free_ports

pytestmark = pytest.mark.integration  # starts Ray clusters, kills processes or runs DDP ranks

pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _wait_for(url: str, seconds: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline and (proc is None or proc.poll() is None):
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return True
        except urllib.error.HTTPError:
            return True  # it answers (401 without the cluster's token)
        except OSError:
            time.sleep(0.5)
    return False


@contextlib.contextmanager
def ray_head():
    """`ray start --head` bound to 127.0.0.1 on free ports; stopped (its process group) after."""
    ray_cli = BIN / "ray"
    if not ray_cli.exists():
        pytest.skip("the ray command is not installed beside this Python")
    gcs, dashboard, client, agent, grpc, metrics, runtime_env = free_ports(7)
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # raylet sockets need a short path
    log = open(Path(temp, "head.log"), "w")  # noqa: SIM115 - open while the head runs
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
         f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
         f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
         "--num-cpus=2", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        if not _wait_for(f"{url}/api/version", 120, proc):
            pytest.fail(f"ray head did not come up: {Path(log.name).read_text()[-3000:]}")
        yield url, env, proc
    finally:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        time.sleep(1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what outlived `ray start` in its group
        except ProcessLookupError:
            pass
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow  # a Ray cluster start and a kill: minutes of CI; run with -m slow
def test_ray_job_submit_runs_a_search_on_the_cluster(tmp_path):
    out = tmp_path / "results"
    with ray_head() as (url, env, proc):
        job = subprocess.run(  # noqa: PLW1510 - the return code is asserted below
            [str(BIN / "ray"), "job", "submit", "--address", url, "--working-dir", str(ROOT), "--",
             "nas", "run", "space=mbconv", "evaluator=cost", "budget=3", "backend=ray", "ray.address=auto",
             f"out={out}", "run_id=on-cluster", "progress=false"],
            # Ray turns token authentication on; a client on the head's machine reads its token
            env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=300,
        )
        assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
        assert "succeeded" in job.stdout + job.stderr
    rows = read_rows(out / "leaderboard.csv")
    assert [r["run_id"] for r in rows] == ["on-cluster"] * 3
    assert all(r["status"] == "ok" and int(r["params"]) > 0 for r in rows)
    assert (out / "runs" / "on-cluster" / "ray").is_dir()  # the job's Tune trials
    # the head is stopped: its process is gone and its dashboard no longer answers
    assert proc.poll() is not None and not _wait_for(f"{url}/api/version", 2)
