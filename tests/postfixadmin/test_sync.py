"""sync_backup: the backup MX's database learns the primary's users."""

import pytest
from salt.exceptions import CommandExecutionError

from .helpers import LOOKUP, run_sql

NOTHING = {"added": [], "updated": [], "removed": []}


@pytest.fixture
def primary(pfa, schema):
    pfa.domain_add("one.test", description="One", database=schema)
    pfa.domain_add("two.test", database=schema)
    pfa.domain_add("off.test", active=False, database=schema)
    pfa.domain_add("theirs.test", backupmx=True, database=schema)
    pfa.mailbox_add("alice@one.test", "pw", full_name="Alice", quota=1024, database=schema)
    pfa.mailbox_add("bob@two.test", "pw", database=schema)
    pfa.mailbox_add("gone@one.test", "pw", active=False, database=schema)
    pfa.alias_add("info@one.test", ["alice@one.test"], database=schema)
    pfa.alias_add("@two.test", ["bob@two.test"], database=schema)
    return schema


@pytest.fixture
def backup(pfa, other_database):
    pfa.schema_init(lookup_user=LOOKUP, database=other_database)
    pfa.domain_add("local.test", database=other_database)
    pfa.mailbox_add("carol@local.test", "pw", database=other_database)
    return other_database


def test_first_sync_adds_everything_active_as_backupmx(pfa, primary, backup):
    changes = pfa.sync_backup(primary, backup)
    assert changes == {
        "domains": {**NOTHING, "added": ["one.test", "two.test"]},
        "aliases": {**NOTHING, "added": ["@two.test", "alice@one.test", "bob@two.test", "info@one.test"]},
        "mailboxes": {**NOTHING, "added": ["alice@one.test", "bob@two.test"]},
        "alias_domains": NOTHING,
    }
    one = pfa.domain_get("one.test", database=backup)
    assert (one["backupmx"], one["active"], one["description"]) == (True, True, "One")
    alice = pfa.mailbox_get("alice@one.test", database=backup)
    assert (alice["quota"], alice["maildir"], alice["full_name"]) == (1024, "one.test/alice/", "Alice")
    assert pfa.mailbox_check_password("alice@one.test", "pw", database=backup) is False
    assert pfa.domain_get("local.test", database=backup)["backupmx"] is False
    assert pfa.sync_backup(primary, backup) == {"domains": NOTHING, "aliases": NOTHING, "mailboxes": NOTHING, "alias_domains": NOTHING}


def test_changes_and_deletions_on_the_primary_follow(pfa, primary, backup):
    pfa.sync_backup(primary, backup)
    pfa.domain_update("one.test", description="Renamed", database=primary)
    pfa.mailbox_update("alice@one.test", quota=2048, database=primary)
    pfa.alias_update("info@one.test", active=False, database=primary)
    pfa.domain_delete("two.test", database=primary)
    pfa.domain_add("three.test", database=primary)

    changes = pfa.sync_backup(primary, backup)
    assert changes == {
        "domains": {"added": ["three.test"], "updated": ["one.test"], "removed": ["two.test"]},
        "aliases": {"added": [], "updated": [], "removed": ["@two.test", "bob@two.test", "info@one.test"]},
        "mailboxes": {"added": [], "updated": ["alice@one.test"], "removed": ["bob@two.test"]},
        "alias_domains": NOTHING,
    }
    assert pfa.domain_get("two.test", database=backup) is None
    assert pfa.alias_get("info@one.test", database=backup) is None
    assert pfa.mailbox_get("alice@one.test", database=backup)["quota"] == 2048
    assert pfa.sync_backup(primary, backup) == {"domains": NOTHING, "aliases": NOTHING, "mailboxes": NOTHING, "alias_domains": NOTHING}
    assert [m["username"] for m in pfa.mailbox_list("local.test", database=backup)] == ["carol@local.test"]


def test_dry_run_reports_and_changes_nothing(pfa, primary, backup):
    changes = pfa.sync_backup(primary, backup, dry_run=True)
    assert changes["domains"]["added"] == ["one.test", "two.test"]
    assert [d["domain"] for d in pfa.domain_list(database=backup)] == ["local.test"]


def test_a_primary_domain_local_on_the_backup_is_refused_and_nothing_changes(pfa, primary, backup):
    pfa.domain_add("one.test", database=backup)
    with pytest.raises(CommandExecutionError, match="one.test are local domains"):
        pfa.sync_backup(primary, backup)
    assert run_sql(backup, "SELECT domain, backupmx FROM domain ORDER BY domain") == [
        ("local.test", False), ("one.test", False)
    ]


def test_a_target_without_the_schema_is_predicted_as_empty_but_not_synced(pfa, primary, other_database):
    predicted = pfa.sync_backup(primary, other_database, dry_run=True)
    assert predicted["domains"] == {**NOTHING, "added": ["one.test", "two.test"]}
    missing = r"the target database has no postfixadmin schema \(missing tables: domain, alias, mailbox, alias_domain\)"
    with pytest.raises(CommandExecutionError, match=missing):
        pfa.sync_backup(primary, other_database)
    assert run_sql(other_database, "SELECT to_regclass('domain')") == [(None,)]

    pfa.schema_init(database=other_database)
    assert pfa.sync_backup(primary, other_database) == predicted


def test_a_source_without_the_schema_is_refused(pfa, database, backup):
    with pytest.raises(CommandExecutionError, match="the source database has no postfixadmin schema"):
        pfa.sync_backup(database, backup, dry_run=True)
    assert [d["domain"] for d in pfa.domain_list(database=backup)] == ["local.test"]
