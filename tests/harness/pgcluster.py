"""A throwaway PostgreSQL cluster, run as the postgres user."""

import glob
import os
import pathlib
import shutil

import psycopg
from psycopg import sql

from .procs import run


def _pg_bindir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/bootstrap)")
    return pathlib.Path(candidates[-1])


class PgCluster:
    """initdb + pg_ctl in BASE, listening on HOST:PORT and a socket in BASE.

    Local socket connections are trusted (the tests' superuser access);
    TCP connections need a password (scram), as lookup tables use them.
    """

    def __init__(self, base, host="127.0.0.1", port=5432):
        self.base = pathlib.Path(base)
        self.host = host
        self.port = port
        self.datadir = self.base / "data"
        self.sockdir = self.base / "run"
        self.logfile = self.base / "postgres.log"
        self.bindir = _pg_bindir()

    def _as_postgres(self, *argv):
        return run(["runuser", "-u", "postgres", "--", *map(str, argv)])

    def start(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockdir.mkdir(exist_ok=True)
        shutil.chown(self.base, "postgres", "postgres")
        shutil.chown(self.sockdir, "postgres", "postgres")
        os.chmod(self.base, 0o755)
        self._as_postgres(
            self.bindir / "initdb", "-D", self.datadir, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )
        options = f"-c listen_addresses={self.host} -p {self.port} -k {self.sockdir} -c fsync=off"
        self._as_postgres(self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-o", options, "-w", "start")
        return self

    def stop(self):
        if (self.datadir / "postmaster.pid").exists():
            run(["runuser", "-u", "postgres", "--", str(self.bindir / "pg_ctl"), "-D", str(self.datadir),
                 "-m", "immediate", "-w", "stop"], check=False)

    def superuser_dsn(self, dbname="postgres"):
        return f"host={self.sockdir} port={self.port} user=postgres dbname={dbname}"

    def psql(self, sql, dbname="postgres"):
        """Run SQL as the superuser; return psql's unaligned output."""
        proc = run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-d", self.superuser_dsn(dbname), "-c", sql])
        return proc.stdout.strip()

    def create_role(self, name, password):
        """A login role; the password goes over the socket, not on a command line."""
        with psycopg.connect(self.superuser_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))

    def create_database(self, name, owner="postgres"):
        self.psql(f'CREATE DATABASE "{name}" OWNER "{owner}"')

    def drop_database(self, name):
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
