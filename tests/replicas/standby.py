# SPDX-License-Identifier: Apache-2.0
"""A hot standby of the test server: pg_basebackup -R into a temporary directory, pg_ctl on a free port.

Made with the server's own binaries (/usr/lib/postgresql/<major>/bin on Debian), run as the
`postgres` OS user when the tests run as root (PostgreSQL refuses to run as root). A physical
replication slot keeps the primary's WAL while the standby is stopped; it is dropped at the end,
and slots left by an earlier run that was killed are dropped at the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SLOT_PREFIX = "twinhub_test_standby_"
MAX_LAG = 1.5  # seconds the tests' hubs let the standby lag: short, so the lag tests take seconds
CHECK_INTERVAL = 0.1
_DROP_SLOT = "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1"


class StandbyUnavailable(Exception):
    """A standby cannot be made here; the message says why."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Standby:
    """A running (or stopped) standby: where it lives and how to start and stop it."""

    primary_dsn: str
    data_dir: Path
    port: int
    bin_dir: Path
    run_as: tuple[str, ...]  # ("runuser", "-u", "postgres", "--") as root, () otherwise
    slot: str

    def dsn(self, database_dsn: str) -> str:
        """`database_dsn` (a database of the primary) as served by the standby."""
        parts = urlsplit(database_dsn)
        user = parts.username or "postgres"
        return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{self.port}"))

    def _pg_ctl(self, *args: str) -> None:
        command = [*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            log = (self.data_dir.parent / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl {args[-1]} failed: {done.stderr.strip()}\n{log}")

    def start(self) -> None:
        """Start the standby and wait until it accepts connections."""
        self._pg_ctl("-l", str(self.data_dir.parent / "log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop it (fast: disconnect clients; immediate: as if the machine lost power)."""
        self._pg_ctl("-m", mode, "-w", "stop")

    async def execute(self, sql: str) -> object:
        """Run one statement on the standby's maintenance database; its first value."""
        conn = await asyncpg.connect(self.dsn(self.primary_dsn))
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()


def _gone(pid: str) -> bool:
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


async def _server_facts(primary_dsn: str) -> tuple[str, dict[str, str]]:
    conn = await asyncpg.connect(primary_dsn)
    try:
        major = str(await conn.fetchval("SELECT current_setting('server_version_num')::int / 10000"))
        # A hot standby needs at least the primary's values of these (PostgreSQL docs, 27.4.1).
        names = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions")
        values = {name: str(await conn.fetchval(f"SHOW {name}")) for name in names}
        values["max_locks_per_transaction"] = str(await conn.fetchval("SHOW max_locks_per_transaction"))
        for slot in await conn.fetch(
            "SELECT slot_name FROM pg_replication_slots WHERE NOT active AND slot_name LIKE $1",
            SLOT_PREFIX + "%",
        ):
            pid = slot["slot_name"].removeprefix(SLOT_PREFIX).split("_")[0]
            if _gone(pid):  # the test run that made it was killed before it could drop it
                await conn.execute("SELECT pg_drop_replication_slot($1)", slot["slot_name"])
    finally:
        await conn.close()
    return major, values


async def make_standby(primary_dsn: str) -> Standby:
    """Base-backup the server of `primary_dsn` and start a hot standby; StandbyUnavailable if impossible."""
    host = urlsplit(primary_dsn).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise StandbyUnavailable(f"the test server {host!r} is not on this machine")
    major, limits = await _server_facts(primary_dsn)
    bin_dir = Path(f"/usr/lib/postgresql/{major}/bin")
    if not (bin_dir / "pg_basebackup").exists():
        found = shutil.which("pg_basebackup")
        if found is None:
            raise StandbyUnavailable(f"no pg_basebackup/pg_ctl of PostgreSQL {major} on this machine")
        bin_dir = Path(found).parent
    run_as: tuple[str, ...] = ()
    owner = os.geteuid()
    if owner == 0:
        try:
            owner = pwd.getpwnam("postgres").pw_uid
        except KeyError:
            raise StandbyUnavailable(
                "running as root and there is no `postgres` OS user to run a server"
            ) from None
        run_as = ("runuser", "-u", "postgres", "--")
    # /tmp, not pytest's tmp_path: the postgres user must reach it, and socket paths must stay short.
    home = Path(tempfile.mkdtemp(prefix="twinhub-standby-"))
    os.chown(home, owner, -1)
    slot = f"{SLOT_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:6]}"
    standby = Standby(primary_dsn, home / "data", _free_port(), bin_dir, run_as, slot)
    await asyncio.to_thread(_backup, standby, owner, limits)
    return standby


def _backup(standby: Standby, owner: int, limits: dict[str, str]) -> None:
    """pg_basebackup -R into the standby's directory, its own config files, and start it."""
    home, run_as, bin_dir = standby.data_dir.parent, standby.run_as, standby.bin_dir
    parts = urlsplit(standby.primary_dsn)
    backup = [
        *run_as,
        str(bin_dir / "pg_basebackup"),
        f"--dbname=host={parts.hostname} port={parts.port or 5432} user={parts.username or 'postgres'}",
        f"--pgdata={standby.data_dir}",
        "--write-recovery-conf",  # -R: standby.signal and primary_conninfo
        "--create-slot",
        f"--slot={standby.slot}",
        "--wal-method=stream",
        "--checkpoint=fast",
    ]
    done = subprocess.run(backup, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise StandbyUnavailable(
            f"pg_basebackup failed ({done.stderr.strip()}); the server must allow replication connections"
            " from 127.0.0.1 (pg_hba.conf `host replication all 127.0.0.1/32 trust`, as .ci/run sets up)"
        )
    # Debian keeps postgresql.conf and pg_hba.conf outside the data directory: the standby gets its own.
    config = {
        "port": str(standby.port),
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{home}'",
        "hot_standby": "on",
        "fsync": "off",  # a throw-away copy
        "shared_buffers": "'16MB'",
        "wal_receiver_status_interval": "1",
        **limits,
    }
    (standby.data_dir / "postgresql.conf").write_text("".join(f"{k} = {v}\n" for k, v in config.items()))
    (standby.data_dir / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    for name in ("postgresql.conf", "pg_hba.conf"):
        os.chown(standby.data_dir / name, owner, -1)
    standby.start()


async def remove_standby(standby: Standby) -> None:
    """Stop the standby, drop its slot on the primary and delete its files."""
    with contextlib.suppress(RuntimeError):  # already stopped
        await asyncio.to_thread(standby.stop, "immediate")
    conn = await asyncpg.connect(standby.primary_dsn)
    try:
        for _ in range(50):  # the walsender of a just-stopped standby may hold the slot a moment
            try:
                await conn.execute(_DROP_SLOT, standby.slot)
                break
            except asyncpg.ObjectInUseError:
                await asyncio.sleep(0.1)
    finally:
        await conn.close()
    shutil.rmtree(standby.data_dir.parent, ignore_errors=True)
