"""Logical replication: the primary publishes, the backup subscribes, a
trigger marks the copies; the relay tables on the backup answer for the
primary's users within seconds, and no password hash reaches the backup."""

import socket

import psycopg
import pytest
from salt.exceptions import CommandExecutionError

from .helpers import QUERIES, load_module, run_sql
from .replication import PUBLICATION, REPLICATOR, REPLICATOR_PASSWORD, start_pair, wait_for

SUBSCRIPTION = "mx2_relay"


@pytest.fixture(scope="module")
def pair(sandbox_base):
    primary, backup = start_pair(sandbox_base / "replication")
    yield primary, backup
    backup.stop()
    primary.stop()


@pytest.fixture
def clean(pair):
    """Both databases emptied, no publication or subscription: each test sets up its own."""
    primary, backup = pair
    pfa = load_module()
    pfa.subscription_absent(SUBSCRIPTION, database=backup.superuser)
    pfa.publication_absent(PUBLICATION, database=primary.admin)
    backup.sql("DROP FUNCTION IF EXISTS postfixadmin_backup_copy() CASCADE")
    for side in pair:
        side.sql("TRUNCATE domain, alias, mailbox, alias_domain CASCADE")
    return primary, backup


def _ready(pfa, backup):
    def ready():
        """the subscription's initial copy is done"""
        status = pfa.subscription_status(SUBSCRIPTION, database=backup.superuser)
        return status and len(status["tables"]) == 4 and set(status["tables"].values()) == {"ready"}

    wait_for(ready, timeout=30)


def _subscribe(pfa, primary, backup):
    pfa.publication_present(PUBLICATION, database=primary.admin)
    pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
    _ready(pfa, backup)


def _relay_lookup(pfa, backup, postmap_config, tmp_path, table, key):
    """What the backup's Postfix relay table TABLE (queries.yaml) answers for KEY (postmap -q)."""
    path = tmp_path / f"{table}.cf"
    settings = backup.lookup
    path.write_text(
        f"hosts = inet:{settings['host']}:{settings['port']}\nuser = {settings['user']}\n"
        f"password = {settings['password']}\ndbname = {settings['dbname']}\n"
        f"query = {' '.join(QUERIES[table]['query'].split())}\n"
    )
    return pfa.lookup(str(path), key, config_dir=postmap_config)


def _mailbox_on_backup(backup, address):
    rows = backup.sql("SELECT password FROM mailbox WHERE username = %s", (address,))
    return rows[0][0] if rows else None


def test_changes_on_the_primary_reach_the_backups_relay_tables(pfa, clean, postmap_config, tmp_path):
    primary, backup = clean
    pfa.domain_add("one.test", description="One", database=primary.admin)
    pfa.domain_add("alias.test", database=primary.admin)
    pfa.mailbox_add("alice@one.test", "s3cret-pw", database=primary.admin)
    _subscribe(pfa, primary, backup)

    def relays(table, key):
        return _relay_lookup(pfa, backup, postmap_config, tmp_path, table, key)

    # The initial copy: the domain is a backup domain on the backup, alice a known recipient.
    assert relays("relay_domains", "one.test") == "one.test"
    assert relays("relay_recipient_maps", "alice@one.test") == "alice@one.test"
    assert pfa.domain_get("one.test", database=backup.admin)["backupmx"] is True
    assert pfa.domain_get("one.test", database=primary.admin)["backupmx"] is False

    # Added, updated, deleted on the primary: the backup follows within seconds, no sync run.
    pfa.mailbox_add("bob@one.test", "b0b-pw", database=primary.admin)
    pfa.alias_add("info@one.test", ["alice@one.test"], database=primary.admin)
    primary.sql("INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.test', 'one.test')")
    _, waited = wait_for(lambda: relays("relay_recipient_maps", "bob@one.test"), timeout=5)
    assert waited < 5
    wait_for(lambda: relays("relay_recipient_maps", "info@one.test"), timeout=5)
    # An address in the alias domain is known because its target's address is.
    assert wait_for(lambda: relays("relay_recipient_maps", "bob@alias.test"), timeout=5)[0] == "bob@alias.test"
    assert relays("relay_domains", "alias.test") == "alias.test"
    assert relays("relay_recipient_maps", "nobody@alias.test") is None

    pfa.alias_update("info@one.test", active=False, database=primary.admin)
    wait_for(lambda: relays("relay_recipient_maps", "info@one.test") is None, timeout=5)
    pfa.mailbox_delete("bob@one.test", database=primary.admin)
    wait_for(lambda: relays("relay_recipient_maps", "bob@one.test") is None, timeout=5)
    wait_for(lambda: _mailbox_on_backup(backup, "bob@one.test") is None, timeout=5)
    primary.sql("DELETE FROM alias_domain WHERE alias_domain = 'alias.test'")
    wait_for(lambda: relays("relay_recipient_maps", "alice@alias.test") is None, timeout=5)
    pfa.domain_update("one.test", description="Renamed", database=primary.admin)
    wait_for(lambda: pfa.domain_get("one.test", database=backup.admin)["description"] == "Renamed", timeout=5)
    # An update on the primary does not undo the backup's mark.
    assert pfa.domain_get("one.test", database=backup.admin)["backupmx"] is True
    assert relays("relay_domains", "one.test") == "one.test"


def test_no_password_hash_reaches_the_backup(pfa, clean):
    primary, backup = clean
    pfa.domain_add("one.test", database=primary.admin)
    pfa.mailbox_add("alice@one.test", "s3cret-pw", full_name="Alice", database=primary.admin)
    _subscribe(pfa, primary, backup)
    pfa.mailbox_add("bob@one.test", "b0b-pw", database=primary.admin)
    wait_for(lambda: _mailbox_on_backup(backup, "bob@one.test"), timeout=5)

    primary_hashes = {row[0] for row in primary.sql("SELECT password FROM mailbox")}
    assert all(h.startswith("{SHA512-CRYPT}$6$") for h in primary_hashes)
    backup_rows = backup.sql("SELECT username, password, name FROM mailbox ORDER BY username")
    assert [row[0] for row in backup_rows] == ["alice@one.test", "bob@one.test"]
    assert {row[1] for row in backup_rows} == {"{SHA512-CRYPT}*"}
    assert {row[2] for row in backup_rows} == {""}  # columns outside the publication keep the backup's defaults
    assert pfa.mailbox_check_password("alice@one.test", "s3cret-pw", database=backup.admin) is False
    # The replication role cannot read the hashes either.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        run_sql(primary.replicator, "SELECT password FROM mailbox")


def test_the_backups_own_domains_are_left_alone(pfa, clean):
    """The trigger fires for replicated rows only: a local domain on the backup stays local."""
    primary, backup = clean
    pfa.domain_add("local.test", database=backup.admin)
    pfa.domain_add("one.test", database=primary.admin)
    _subscribe(pfa, primary, backup)
    pfa.domain_update("local.test", description="still local", database=backup.admin)
    assert pfa.domain_get("local.test", database=backup.admin)["backupmx"] is False
    assert pfa.domain_get("one.test", database=backup.admin)["backupmx"] is True


def test_idempotent_and_predicted(pfa, clean):
    primary, backup = clean
    pfa.domain_add("one.test", database=primary.admin)
    predicted = pfa.publication_present(PUBLICATION, database=primary.admin, dry_run=True)
    assert predicted["publication"]["old"] is None
    assert predicted["publication"]["new"]["mailbox"] == ["active", "created", "domain", "local_part", "modified", "username"]
    assert pfa.publication_present(PUBLICATION, database=primary.admin) == predicted
    assert pfa.publication_present(PUBLICATION, database=primary.admin) == {}

    sub = pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser, dry_run=True)
    assert set(sub) == {"subscription", "backup_copy_triggers"}
    assert pfa.subscription_status(SUBSCRIPTION, database=backup.superuser) is None
    assert pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser) == sub
    assert pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser) == {}
    assert primary.replicator["password"] not in str(sub)

    assert pfa.role_present(REPLICATOR, password=primary.replicator["password"], replication=True,
                            database=primary.superuser) == {}
    assert pfa.role_present(REPLICATOR, password="another one", replication=True, database=primary.superuser,
                            dry_run=True) == {"password": {"old": "********", "new": "********"}}
    assert pfa.role_grants_present(REPLICATOR, "replication", database=primary.admin) == {}
    assert pfa.server_settings_present({"wal_level": "logical"}, database=primary.superuser) == {}


def _log_every_statement(side, on):
    with psycopg.connect(**side.superuser, autocommit=True) as conn:
        for setting, value in (("log_statement", "all"), ("log_min_duration_statement", "0")):
            conn.execute(f"ALTER SYSTEM SET {setting} = '{value}'" if on else f"ALTER SYSTEM RESET {setting}")
        conn.execute("SELECT pg_reload_conf()")

    def applied():
        with psycopg.connect(**side.superuser) as conn:
            return (conn.execute("SHOW log_statement").fetchone()[0] == "all") == on
    wait_for(applied)


@pytest.fixture
def logging_every_statement(clean):
    """Both servers log every statement, and every statement's duration with its text."""
    for side in clean:
        _log_every_statement(side, True)
    yield clean
    for side in clean:
        _log_every_statement(side, False)


def test_passwords_stay_out_of_a_server_log_of_every_statement(pfa, logging_every_statement):
    primary, backup = logging_every_statement
    logs = {side: (side.cluster.logfile, side.cluster.logfile.stat().st_size) for side in (primary, backup)}
    assert pfa.role_present("pfa_log_probe", password="n3w-R0le-S3cret", database=primary.superuser)
    pfa.domain_add("one.test", database=primary.admin)
    pfa.publication_present(PUBLICATION, database=primary.admin)
    pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
    _ready(pfa, backup)
    logged = "".join(path.read_text(errors="replace")[offset:] for path, offset in logs.values())
    assert "one.test" in logged and "statement: " in logged, "the servers logged statements meanwhile"
    assert "n3w-R0le-S3cret" not in logged
    assert REPLICATOR_PASSWORD.split()[0] not in logged, "the subscription's connection string"


def test_changed_connection_is_altered_with_the_password_masked(pfa, clean):
    primary, backup = clean
    pfa.domain_add("one.test", database=primary.admin)
    _subscribe(pfa, primary, backup)
    moved = {**primary.replicator, "sslmode": "disable"}
    changes = pfa.subscription_present(SUBSCRIPTION, moved, PUBLICATION, database=backup.superuser)
    assert changes["subscription"]["new"]["connection"].endswith("password=******** sslmode=disable")
    assert primary.replicator["password"] not in str(changes)
    assert pfa.subscription_present(SUBSCRIPTION, moved, PUBLICATION, database=backup.superuser) == {}


def test_refused_while_the_primary_publishes_nothing(pfa, clean):
    """The backup applied before the primary: it fails saying why, and changes nothing."""
    primary, backup = clean
    pfa.domain_add("one.test", database=primary.admin)
    with pytest.raises(CommandExecutionError, match="has no publication postfixadmin_relay yet") as error:
        pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
    assert primary.replicator["password"] not in str(error.value)
    assert pfa.subscription_status(SUBSCRIPTION, database=backup.superuser) is None
    assert backup.sql("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'postfixadmin_backup_%'") == [(0,)]


def test_refused_while_the_primary_database_is_not_running(pfa, clean):
    """The backup applied before the primary's PostgreSQL runs: it fails naming the primary, and changes nothing."""
    _, backup = clean
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        not_running = dict(clean[0].replicator, port=unused.getsockname()[1])
    refused = r"cannot connect to the primary database pfa_sync@.*nothing was changed \(not running yet\?\)"
    with pytest.raises(CommandExecutionError, match=refused) as error:
        pfa.subscription_present(SUBSCRIPTION, not_running, PUBLICATION, database=backup.superuser)
    assert not_running["password"] not in str(error.value)
    assert pfa.subscription_status(SUBSCRIPTION, database=backup.superuser) is None


def test_snapshot_copies_are_replaced_and_local_domains_refused(pfa, clean):
    """Switching from snapshot to logical: the sync's copies give way to the subscription's."""
    primary, backup = clean
    pfa.domain_add("one.test", database=primary.admin)
    pfa.mailbox_add("alice@one.test", "pw", database=primary.admin)
    pfa.sync_backup(primary.admin, backup.admin)
    pfa.publication_present(PUBLICATION, database=primary.admin)
    predicted = pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser,
                                         dry_run=True)
    assert predicted["snapshot_copies_removed"] == {"old": ["one.test"], "new": None}
    pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
    _ready(pfa, backup)
    assert [row["username"] for row in pfa.mailbox_list(database=backup.admin)] == ["alice@one.test"]
    assert pfa.domain_get("one.test", database=backup.admin)["backupmx"] is True

    pfa.subscription_absent(SUBSCRIPTION, database=backup.superuser)
    pfa.domain_add("two.test", database=primary.admin)
    pfa.domain_add("two.test", database=backup.admin)
    with pytest.raises(CommandExecutionError, match="two.test are local domains"):
        pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
    assert pfa.subscription_status(SUBSCRIPTION, database=backup.superuser) is None


def test_states_refuse_an_unprepared_primary_then_converge(states, clean):
    """Every minion applied at once, backup first: its state fails saying why; once the primary
    published, the next apply subscribes, and the one after changes nothing."""
    primary, backup = clean
    load_module().domain_add("one.test", database=primary.admin)
    kwargs = {"name": SUBSCRIPTION, "source": primary.replicator, "publication": PUBLICATION,
              "database": backup.superuser}
    early = states.postfixadmin.subscription_present(**kwargs)
    assert early.result is False and "has no publication postfixadmin_relay yet" in early.comment
    assert early.changes == {}

    published = states.postfixadmin.publication_present(name=PUBLICATION, database=primary.admin)
    assert published.result is True and "publication" in published.changes
    predicted = states.postfixadmin.subscription_present(**kwargs, test=True)
    assert predicted.result is None and "subscription" in predicted.changes
    assert load_module().subscription_status(SUBSCRIPTION, database=backup.superuser) is None
    applied = states.postfixadmin.subscription_present(**kwargs)
    assert applied.result is True and applied.changes == predicted.changes
    again = states.postfixadmin.subscription_present(**kwargs)
    assert (again.result, again.changes) == (True, {})
    for ret in (early, predicted, applied, again):
        assert primary.replicator["password"] not in str(ret.raw)
    assert states.postfixadmin.publication_present(name=PUBLICATION, database=primary.admin).changes == {}
