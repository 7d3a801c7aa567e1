"""Start and stop `povguard up` as a user does, for the cross-service tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SERVICES = ["intake", "assessment", "review", "support", "audit"]


def start_up(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "povguard_tools.cli", "up", "--data-dir", str(data_dir),
            "--nats-port", str(ports["nats"]), "--pg-port", str(ports["pg"])]
    args += [a for name in SERVICES for a in (f"--{name}-port", str(ports[name]))]
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            start_new_session=True)


def wait_line(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("povguard is up"):
            return line
        if not line and proc.poll() is not None:
            raise AssertionError(f"povguard up exited with {proc.returncode}")
    raise AssertionError("povguard up did not become ready")


def stop(proc: subprocess.Popen[str]) -> int:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    return proc.wait(60)
