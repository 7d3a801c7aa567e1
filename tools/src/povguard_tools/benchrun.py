"""What a benchmark run needs to be comparable with another: the conditions it ran under (machine, load, fsync,
commit, the other busy processes) and, on request, a py-spy profile of each service process.

The machines are shared: a figure means little without the load beside it, so every run records the load average
before and after and the three busiest processes that were not ours while it ran."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def git_commit() -> str:
    """The checkout's commit, with `+dirty` when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu_seconds(pid: int | None, *, children: bool = False) -> float:
    """User and system CPU seconds of a process so far; with `children`, also its children's, live and reaped
    (PostgreSQL's backends come and go under the postmaster). A process gone counts 0."""
    if pid is None:
        return 0.0
    try:
        proc = psutil.Process(pid)
        t = proc.cpu_times()
        total = t.user + t.system
        kids = proc.children(recursive=True) if children else []
    except psutil.NoSuchProcess:
        return 0.0
    if children:
        total += t.children_user + t.children_system
    for child in kids:
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system
    return float(total)


def ensure_tool(name: str, package: str | None = None) -> str | None:
    """The tool's path; installed with apt-get when missing and we are root, else None (the caller names it)."""
    if found := shutil.which(name):
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", package or name], capture_output=True)
    return shutil.which(name)


class BusyWatch:
    """Samples every process on the machine every few seconds and adds up the CPU time of those that are not ours
    (the run's own tree is excluded), so a run on a busy machine says who else was busy."""

    def __init__(self, ours: set[int], interval: float = 3.0) -> None:
        self.ours, self.interval = ours, interval
        self.seen: dict[int, float] = {}
        self.spent: Counter[int] = Counter()
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ours(self, proc: psutil.Process) -> bool:
        try:
            return proc.pid in self.ours or any(p.pid in self.ours for p in proc.parents())
        except psutil.Error:
            return True

    def _sample(self) -> None:
        for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
            info = proc.info
            if info["cpu_times"] is None or self._ours(proc):
                continue
            t = info["cpu_times"].user + info["cpu_times"].system
            pid = info["pid"]
            if pid in self.seen:
                self.spent[pid] += max(0.0, t - self.seen[pid])
            self.seen[pid] = t
            self.names[pid] = " ".join(info["cmdline"] or [info["name"] or "?"])[:100]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> BusyWatch:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def top(self, n: int = 3) -> list[dict[str, Any]]:
        return [{"pid": pid, "cpu_seconds": round(s, 1), "command": self.names[pid]}
                for pid, s in self.spent.most_common(n) if s >= 0.1]


def conditions(fsync: str, load_before: tuple[float, float, float], busy: BusyWatch) -> dict[str, Any]:
    return {"load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "cpu_model": cpu_model(), "cpu_count": os.cpu_count(), "fsync": fsync, "git_commit": git_commit(),
            "python": sys.version.split()[0], "other_busy_processes": busy.top(3)}


class Profiler:
    """py-spy `record` on each Python process (raw collapsed stacks), stopped with SIGINT; `summary` gives the top
    functions by own time and by time including callees."""

    def __init__(self, pids: dict[str, int], out: Path, rate: int = 50) -> None:
        self.out = out
        self.spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(self.spy).exists():
            raise RuntimeError("py-spy not found: `uv pip install py-spy` into the venv")
        out.mkdir(parents=True, exist_ok=True)
        self.procs = {name: subprocess.Popen(
            [self.spy, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--format", "raw",
             "--output", str(out / f"{name}.txt")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, pid in pids.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        time.sleep(0.2)

    def summary(self, top: int = 25) -> str:
        lines = []
        for name in self.procs:
            lines += summarise(name, self.out / f"{name}.txt", top)
        return "\n".join(lines)


def summarise(name: str, raw: Path, top: int) -> list[str]:
    """Top frames of one process's collapsed stacks (`a;b;c count` per line)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines() if raw.exists() else []:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        # one entry per function: py-spy names a frame by its line, which splits a function over many entries
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        samples += n
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"== {name}: {samples} samples"]
    if not samples:
        return out
    out.append("  own%   total%  function (file:line)")
    for frame, n in own.most_common(top):
        out.append(f"  {100 * n / samples:5.1f}  {100 * total[frame] / samples:6.1f}  {frame}")
    out.append("  -- by total (including callees), ours only:")
    ours = [(f, n) for f, n in total.most_common() if "povguard" in f]
    for frame, n in ours[:top]:
        out.append(f"         {100 * n / samples:6.1f}  {frame}")
    return out


def report(console: Console, title: str, result: dict[str, Any], out: Path, name: str) -> None:
    """A run's figures as a two-column table, and as JSON in `out/name`."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else f"{value}")
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    console.print(f"wrote {out / name}")
