"""postfix.database applied with salt-call --local on a fresh PostgreSQL
cluster (the state restarts it for wal_level), then the primary-publishes /
backup-subscribes pair through the sls states: a backup applied before its
primary fails saying so; once the primary published, the backup's relay
tables answer for the primary's users."""

import psycopg
import pytest

from tests.harness.pgcluster import PgCluster
from tests.harness.masterless import Masterless, changed_states

from .helpers import ADMIN, ADMIN_PASSWORD, LOOKUP, LOOKUP_PASSWORD, load_module

REPLICATOR, REPLICATOR_PASSWORD = "pfa_sync", "r3pl 'S3cret\"x"
DOVECOT, DOVECOT_PASSWORD = "pfa_dovecot", "d0ve-S3cret"


def _pg_ctl(cluster, action):
    return ["runuser", "-u", "postgres", "--", str(cluster.bindir / "pg_ctl"), "-D", str(cluster.datadir),
            "-l", str(cluster.logfile), "-w", action]


def _server_pillar(cluster, publish):
    return {"postfix": {
        "database": {"host": "127.0.0.1", "port": cluster.port, "dbname": "postfixadmin", "user": ADMIN,
                     "password": ADMIN_PASSWORD, "sslmode": None},
        "postfixadmin": {"lookup_user": {"name": LOOKUP, "password": LOOKUP_PASSWORD}},
        "database_server": {
            "packages": [],
            "reload_command": _pg_ctl(cluster, "reload"),
            "restart_command": _pg_ctl(cluster, "restart"),
            "hba_file": str(cluster.datadir / "pg_hba.conf"),
            "ident_file": str(cluster.datadir / "pg_ident.conf"),
            "hba": [{"user": REPLICATOR, "address": "127.0.0.0/8"}],
            "superuser": {"host": str(cluster.sockdir), "port": cluster.port},
            "replication_role": {"name": REPLICATOR, "password": REPLICATOR_PASSWORD},
            "dovecot_role": {"name": DOVECOT, "password": DOVECOT_PASSWORD},
            "publish": publish,
        },
    }}


@pytest.fixture
def server(sandbox_base, request):
    cluster = PgCluster(sandbox_base / f"pg-db-sls-{request.node.name[:20]}", port=5451).start()
    minion = Masterless(sandbox_base / f"salt-db-{request.node.name[:30]}", minion_id="db1").write_config()
    yield cluster, minion
    cluster.stop()


def _setting(cluster, name):
    return cluster.psql(f"SHOW {name}")


def test_a_bare_server_becomes_the_primary_in_one_apply(server):
    cluster, minion = server
    assert _setting(cluster, "wal_level") == "replica"
    minion.set_pillar(_server_pillar(cluster, publish=True))

    # test=True predicts the server-level states and writes nothing (the schema's states can only
    # connect once the database exists).
    _, predicted = minion.apply("postfix.database", test=True)
    results = {key.split("_|-")[1]: value["result"] for key, value in predicted.items()}
    for state in ("postfix-database-settings", "postfix-database-role-admin", "postfix-database-role-replication",
                  "postfix-database-database"):
        assert results[state] is None, predicted
    assert _setting(cluster, "wal_level") == "replica"
    assert cluster.psql("SELECT count(*) FROM pg_database WHERE datname = 'postfixadmin'") == "0"

    rc, result = minion.apply("postfix.database")
    assert rc == 0, {k: (v["result"], v["comment"]) for k, v in result.items() if v["result"] is False}
    changed = {key.split("_|-")[1] for key in changed_states(result)}
    assert {"postfix-database-settings", "postfix-database-restarted", "postfix-database-database",
            "postfix-database-schema", "postfix-database-publication", "postfix-database-role-replication",
            "postfix-database-grants-dovecot"} <= changed
    assert _setting(cluster, "wal_level") == "logical"
    for secret in (ADMIN_PASSWORD, LOOKUP_PASSWORD, REPLICATOR_PASSWORD, DOVECOT_PASSWORD):
        assert secret not in str(result)

    # The roles log in over TCP with their passwords and see what they are for.
    pfa = load_module()
    dovecot = {"host": "127.0.0.1", "port": cluster.port, "dbname": "postfixadmin", "user": DOVECOT,
               "password": DOVECOT_PASSWORD}
    admin = {**dovecot, "user": ADMIN, "password": ADMIN_PASSWORD}
    pfa.domain_add("one.test", database=admin)
    pfa.mailbox_add("alice@one.test", "pw", database=admin)
    with psycopg.connect(**dovecot) as conn:
        assert conn.execute("SELECT password FROM mailbox").fetchone()[0].startswith("{SHA512-CRYPT}$6$")
    with psycopg.connect(**{**dovecot, "user": REPLICATOR, "password": REPLICATOR_PASSWORD}) as conn:
        assert conn.execute("SELECT username FROM mailbox").fetchone()[0] == "alice@one.test"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT password FROM mailbox")
    assert "map=postfix_formula" in (cluster.datadir / "pg_hba.conf").read_text().splitlines()[1]

    rc, again = minion.apply("postfix.database")
    assert rc == 0 and changed_states(again) == {}, changed_states(again)


def _relay_states(sandbox_base, name, relay):
    minion = Masterless(sandbox_base / f"salt-relay-{name}", minion_id="mx2.example.test").write_config()
    minion.set_pillar({"postfix": {"relay": {"enabled": True, **relay}}})
    rc, output, _ = minion.salt_call("state.show_sls", "postfix.relay")
    return rc, output


PRIMARY = {"host": "db1.example.test", "port": 5432, "dbname": "postfixadmin", "user": REPLICATOR, "password": "x"}


def test_relay_replication_pillar_picks_the_states(sandbox_base):
    rc, logical = _relay_states(sandbox_base, "logical", {"replication": "logical", "sync_from": PRIMARY})
    assert rc == 0, logical
    subscribed = logical["postfix-relay-database-subscribed"]["postfixadmin"]
    assert "subscription_present" in subscribed
    args = {key: value for item in subscribed if isinstance(item, dict) for key, value in item.items()}
    assert args["name"] == "relay_mx2_example_test"
    assert args["database"] == {"host": "/var/run/postgresql", "port": 5432, "user": "postgres", "password": None,
                                "dbname": "postfixadmin"}
    assert "postfix-relay-database-synced" not in logical

    rc, snapshot = _relay_states(sandbox_base, "snapshot", {"sync_from": PRIMARY})
    assert rc == 0, snapshot
    synced = snapshot["postfix-relay-database-synced"]["postfixadmin"]
    watch_in = [item["watch_in"] for item in synced if isinstance(item, dict) and "watch_in" in item]
    assert watch_in == [[{"postfix": "postfix-service-running"}]]
    rc, bad = _relay_states(sandbox_base, "bad", {"replication": "streaming", "sync_from": PRIMARY})
    assert rc != 0 and "postfix:relay:replication must be logical or snapshot: streaming" in str(bad)
