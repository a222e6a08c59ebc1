"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary directory.

Used by ``tests/conftest.py``; also runnable by hand to get a server for a manual check:

    python scripts/pg_test_server.py        # prints the URL, stops on Ctrl-C

The server listens on 127.0.0.1 only, on a free port, with trust authentication for the
``postgres`` superuser. PostgreSQL refuses to run as root, so under root it runs as the system
user ``itsmkpi_pg`` (created with ``useradd`` when missing).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

PG_USER = "itsmkpi_pg"
INSTALL_HINT = "install the PostgreSQL server: apt-get install postgresql (Debian/Ubuntu)"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    candidates: list[Path] = []
    if os.environ.get("ITSM_KPI_PG_BINDIR"):
        candidates.append(Path(os.environ["ITSM_KPI_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", Path(p).parent.name)])
    candidates += [Path(p) for p in reversed(versions)]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    return next((c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _os_user() -> str | None:
    """The unprivileged user to run the server as (None: the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return PG_USER


@dataclass
class PgServer:
    """One PostgreSQL server in its own temporary directory."""

    bindir: Path
    port: int = 0
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="itsmkpi-pg-")))
    user: str | None = None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(list(args), user=self.user, capture_output=True, text=True, check=False,
                              cwd=self.base, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
        return proc

    def start(self) -> PgServer:
        """initdb and start the server; retries on another port if the one picked was taken."""
        self.user = _os_user()
        self.base.chmod(0o755)
        if self.user:
            shutil.chown(self.base, self.user, self.user)
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        for attempt in range(3):
            self.port = _free_port()
            try:
                self._pg_ctl_start()
                return self
            except RuntimeError:
                if attempt == 2:
                    raise
                log.warning("PostgreSQL did not start on port %s, trying another", self.port)
        return self

    def _pg_ctl_start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run(str(self.bindir / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.datadir),
                  "-l", str(self.base / "server.log"), "-o", opts)

    def create_database(self, name: str | None = None) -> str:
        """Create a fresh database and return its URL."""
        import psycopg  # only needed when a server is used

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever is still connected."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its directory."""
        if self.datadir.exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "stop", "-D", str(self.datadir), "-m", "immediate", "-w")
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> None:
    """Start a server, print its URL, stop it on Ctrl-C or SIGTERM."""
    logging.basicConfig(level=logging.INFO)
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(f"no PostgreSQL binaries found; {INSTALL_HINT}")
    server = PgServer(bindir).start()
    print(server.create_database("itsm_kpi"), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
