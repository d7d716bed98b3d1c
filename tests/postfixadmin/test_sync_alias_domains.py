"""Snapshot sync (relay:replication snapshot): alias domains are copied, and
a primary that is not set up yet is refused instead of copied as empty."""

import pytest
from salt.exceptions import CommandExecutionError

from .helpers import LOOKUP, QUERIES, run_sql

NOTHING = {"added": [], "updated": [], "removed": []}


@pytest.fixture
def backup(pfa, other_database):
    pfa.schema_init(lookup_user=LOOKUP, database=other_database)
    return other_database


def _relay_recipient(pfa, database, postmap_config, tmp_path, key):
    path = tmp_path / "relay_recipient_maps.cf"
    path.write_text(
        f"hosts = inet:{database['host']}:{database['port']}\nuser = {database['user']}\n"
        f"password = {database['password']}\ndbname = {database['dbname']}\n"
        f"query = {' '.join(QUERIES['relay_recipient_maps']['query'].split())}\n"
    )
    return pfa.lookup(str(path), key, config_dir=postmap_config)


def test_alias_domains_are_copied_and_their_addresses_relayed(pfa, schema, backup, postmap_config, tmp_path):
    pfa.domain_add("one.test", database=schema)
    pfa.domain_add("alias.test", database=schema)
    pfa.domain_add("other.test", database=schema)
    pfa.mailbox_add("alice@one.test", "pw", database=schema)
    pfa.alias_add("@other.test", ["alice@one.test"], database=schema)
    run_sql(schema, "INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('alias.test', 'one.test')")

    def known(key):
        return _relay_recipient(pfa, backup, postmap_config, tmp_path, key)

    assert known("alice@alias.test") is None
    changes = pfa.sync_backup(schema, backup)
    assert changes["alias_domains"] == {**NOTHING, "added": ["alias.test"]}
    assert run_sql(backup, "SELECT alias_domain, target_domain, active FROM alias_domain") == [
        ("alias.test", "one.test", True)
    ]
    assert known("alice@alias.test") == "alice@alias.test"
    assert known("nobody@alias.test") is None
    # Postfix looks up user@domain, then @domain (catch-alls): postmap -q asks the way Postfix does.
    assert known("anyone@other.test") is None
    assert known("@other.test") == "@other.test"
    assert known("@alias.test") is None

    run_sql(schema, "UPDATE alias_domain SET target_domain = 'other.test'")
    assert pfa.sync_backup(schema, backup)["alias_domains"] == {**NOTHING, "updated": ["alias.test"]}
    assert known("@alias.test") == "@alias.test"  # the target's catch-all
    run_sql(schema, "UPDATE alias_domain SET active = false")
    assert pfa.sync_backup(schema, backup)["alias_domains"] == {**NOTHING, "removed": ["alias.test"]}
    assert known("@alias.test") is None
    assert pfa.sync_backup(schema, backup)["alias_domains"] == NOTHING


def test_a_primary_without_domains_is_refused_and_the_copy_kept(pfa, schema, backup):
    pfa.domain_add("one.test", database=schema)
    pfa.sync_backup(schema, backup)
    pfa.domain_delete("one.test", database=schema)
    for dry_run in (True, False):
        with pytest.raises(CommandExecutionError, match="holds no active domain yet: set up the primary first"):
            pfa.sync_backup(schema, backup, dry_run=dry_run)
    assert [d["domain"] for d in pfa.domain_list(database=backup)] == ["one.test"]
    changes = pfa.sync_backup(schema, backup, allow_empty=True)
    assert changes["domains"] == {**NOTHING, "removed": ["one.test"]}


def test_the_state_fails_saying_so(states, schema, backup):
    ret = states.postfixadmin.backup_synced(name="backup", source=schema, target=backup)
    assert ret.result is False
    assert "holds no active domain yet" in ret.comment and ret.changes == {}
    assert schema["password"] not in ret.comment
