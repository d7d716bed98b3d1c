"""Two PostgreSQL clusters for logical replication: a primary (wal_level
logical, set the way the formula sets it: ALTER SYSTEM, then a restart) and
a backup, each with a postfixadmin database owned by the admin role, the
primary's replication role and the backup's lookup role. Shared by the
replication tests and bench/replication_bench.py."""

import time

import psycopg
from psycopg import sql

from tests.harness.pgcluster import PgCluster
from tests.harness.procs import run

from .helpers import ADMIN, ADMIN_PASSWORD, LOOKUP, LOOKUP_PASSWORD, load_module

REPLICATOR, REPLICATOR_PASSWORD = "pfa_sync", "r3pl-S3cret 'q\"x"
PUBLICATION = "postfixadmin_relay"
DBNAME = "postfixadmin"


def restart(cluster):
    options = f"-c listen_addresses={cluster.host} -p {cluster.port} -k {cluster.sockdir} -c fsync=off"
    run(["runuser", "-u", "postgres", "--", str(cluster.bindir / "pg_ctl"), "-D", str(cluster.datadir),
         "-l", str(cluster.logfile), "-o", options, "-w", "-m", "fast", "restart"])


class Side:
    """One cluster with a postfixadmin database: connection dicts for its roles."""

    def __init__(self, base, port):
        self.cluster = PgCluster(base, port=port)

    def start(self):
        self.cluster.start()
        self.superuser_server = {"host": str(self.cluster.sockdir), "port": self.cluster.port,
                                 "dbname": "postgres", "user": "postgres"}
        self.superuser = {**self.superuser_server, "dbname": DBNAME}
        with psycopg.connect(self.cluster.superuser_dsn(), autocommit=True) as conn:
            for role, password in ((ADMIN, ADMIN_PASSWORD), (LOOKUP, LOOKUP_PASSWORD)):
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DBNAME), sql.Identifier(ADMIN)))
        self.admin = {"host": "127.0.0.1", "port": self.cluster.port, "dbname": DBNAME,
                      "user": ADMIN, "password": ADMIN_PASSWORD}
        self.lookup = {**self.admin, "user": LOOKUP, "password": LOOKUP_PASSWORD}
        return self

    def stop(self):
        self.cluster.stop()

    def sql(self, query, params=None):
        with psycopg.connect(**self.superuser) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else None


def start_pair(base, primary_port=5441, backup_port=5442):
    """(primary, backup): both with the postfixadmin schema; the primary restarted with
    wal_level logical and its replication role in place (nothing published or subscribed yet)."""
    pfa = load_module()
    primary = Side(base / "pg-primary", primary_port).start()
    backup = Side(base / "pg-backup", backup_port).start()
    for side in (primary, backup):
        pfa.schema_init(lookup_user=LOOKUP, database=side.admin)
    pfa.server_settings_present({"wal_level": "logical"}, database=primary.superuser_server)
    restart(primary.cluster)
    pfa.role_present(REPLICATOR, password=REPLICATOR_PASSWORD, replication=True, database=primary.superuser_server)
    pfa.role_grants_present(REPLICATOR, "replication", database=primary.admin)
    primary.replicator = {**primary.admin, "user": REPLICATOR, "password": REPLICATOR_PASSWORD}
    return primary, backup


def wait_for(predicate, timeout=10.0, step=0.05):
    """Poll PREDICATE until it returns something true; return (value, seconds waited)."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not true after {timeout}s: {predicate.__doc__ or predicate}")
        time.sleep(step)
