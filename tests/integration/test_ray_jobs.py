"""docs/ray.md's cluster recipe, run as written on a fresh machine: an empty HOME (so no Ray token
from an earlier run), a real head on 127.0.0.1, a small `nas run backend=ray` through `ray job submit`."""
from __future__ import annotations

import os
import re
import shlex
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

from nas.run.files import read_rows
from tests.integration.test_readme import _blocks
from tests.ports import free_ports

pytestmark = pytest.mark.integration  # starts a Ray cluster

pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
from tests.paths import ROOT

BIN = Path(sys.executable).parent
DOC_ADDRESS = "http://127.0.0.1:8265"
DOC_OUT = "out=/shared/results"
SMALL = "evaluator=cost budget=3 run_id=on-cluster progress=false"  # seconds, not a real search


def cluster_recipe() -> list[str]:
    """The commands of docs/ray.md's `ray job submit` block (continuations joined, comments dropped)."""
    blocks = [b for b in _blocks("bash") if "ray job submit" in b]
    assert len(blocks) == 1, "docs/ray.md should show one cluster recipe"
    lines = []
    for line in blocks[0].replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line:
            lines.append(" ".join(line.split()))
    return lines


def _as_test(recipe: list[str], head_flags: str, dashboard: int, out: Path) -> str:
    """The recipe as a bash script, with only what a test needs changed: free ports and a short temp
    dir for the head, its dashboard port in the address, a 3-trial cost search writing to ``out``,
    and no `ray stop` (it stops every Ray process of this user: the caller stops this head's)."""
    script = ["set -euo pipefail"]
    for line in recipe:
        if line.startswith("ray start --head"):
            assert "--dashboard-host=127.0.0.1" in line  # the dashboard is not exposed
            line += f" {head_flags}"
        elif line.startswith("ray job submit"):
            assert DOC_ADDRESS in line and DOC_OUT in line, line
            line = line.replace(DOC_ADDRESS, f"http://127.0.0.1:{dashboard}")
            line = line.replace(DOC_OUT, f"out={shlex.quote(str(out))}") + f" {SMALL}"
        elif line == "ray stop":
            continue
        script.append(line)
    return "\n".join(script)


def _get(url: str, headers: dict[str, str] | None = None) -> int | None:
    """The HTTP status of a GET (None when nothing answers)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _leftovers(session: int, home: Path) -> list[psutil.Process]:
    """What the recipe started: its session (`ray start`'s daemons, the raylet's workers) and anything
    else with its HOME (a job's driver runs in a session of its own)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid():
                continue
            if os.getsid(proc.pid) == session or proc.environ().get("HOME") == str(home):
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _stop(session: int, home: Path) -> list[str]:
    """Stop what the recipe started (SIGTERM, then SIGKILL); the command lines of any survivors."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        procs = _leftovers(session, home)
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.Error:
                pass
        psutil.wait_procs(procs, timeout=wait)
    time.sleep(1)
    survivors = []
    for proc in _leftovers(session, home):
        try:
            survivors.append(" ".join(proc.cmdline())[:200])
        except psutil.Error:
            pass
    return survivors


def test_the_documented_cluster_recipe_runs_a_search_on_a_fresh_machine(tmp_path):
    if not (BIN / "ray").exists():
        pytest.skip("the ray command is not installed beside this Python")
    recipe = cluster_recipe()
    gcs, dashboard, client, agent, grpc, metrics, runtime_env = free_ports(7)
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # raylet sockets need a short path
    head_flags = (f"--node-ip-address=127.0.0.1 --port={gcs} --dashboard-port={dashboard} "
                  f"--ray-client-server-port={client} --dashboard-agent-listen-port={agent} "
                  f"--dashboard-agent-grpc-port={grpc} --metrics-export-port={metrics} "
                  f"--runtime-env-agent-port={runtime_env} --num-cpus=2 --temp-dir={temp}")
    out = tmp_path / "results"
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"  # the head's machine, another one
    for folder in (home, elsewhere):
        folder.mkdir()
    fresh = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # no RAY_ADDRESS, RAY_AUTH_*
    fresh.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TMPDIR=temp,
                 **{var: str(home / sub) for var, sub in (("XDG_CONFIG_HOME", ".config"),
                                                          ("XDG_CACHE_HOME", ".cache"),
                                                          ("XDG_DATA_HOME", ".local/share"))})
    url = f"http://127.0.0.1:{dashboard}"
    start = time.time()
    shell = subprocess.Popen(
        ["bash", "-c", _as_test(recipe, head_flags, dashboard, out)], cwd=ROOT,
        env={**fresh, "HOME": str(home)}, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            log, _ = shell.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            shell.kill()
            log, _ = shell.communicate()
        assert shell.returncode == 0, log[-4000:]
        assert "succeeded" in log, log[-4000:]
        took = time.time() - start
        token_file = home / ".ray" / "auth_token"
        token = token_file.read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{64}", token) and token_file.stat().st_mode & 0o077 == 0
        # the head is not open: without the token its job API answers 401, with it 200
        assert _get(f"{url}/api/jobs/") == 401
        assert _get(f"{url}/api/jobs/", {"Authorization": f"Bearer {token}"}) == 200
        # a client on another machine (another empty HOME) with only the token, as docs/ray.md says
        listed = subprocess.run(  # noqa: PLW1510 - the return code is asserted below
            [str(BIN / "ray"), "job", "list", "--address", url], cwd=elsewhere, capture_output=True,
            text=True, timeout=120,
            env={**fresh, "HOME": str(elsewhere), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
        assert listed.returncode == 0 and "run_id=on-cluster" in listed.stdout, listed.stderr[-3000:]
    finally:
        survivors = _stop(shell.pid, home)
        shutil.rmtree(temp, ignore_errors=True)
    assert not survivors, survivors  # the head and everything it started are gone
    assert _get(f"{url}/api/version") is None
    rows = read_rows(out / "leaderboard.csv")
    assert {r["run_id"] for r in rows} == {"on-cluster"}
    assert sorted(r["stage"] for r in rows) == ["baseline", "search", "search", "search"]  # evolution's seed + budget
    assert all(r["status"] == "ok" and int(r["params"]) > 0 for r in rows)
    assert (out / "runs" / "on-cluster" / "ray").is_dir()  # the job's Tune trials
    print(f"recipe (head start and job) took {took:.0f} s")
