"""The standard queries (postfix/queries.yaml) through postmap -q, and the lookup_table state."""

import grp
import os

import pytest

from .helpers import LOOKUP_PASSWORD, QUERIES

QUOTA = 1073741824
HOSTILE = "x' OR '1'='1@primary.test"


@pytest.fixture
def seeded(pfa, schema):
    pfa.domain_add("primary.test", database=schema)
    pfa.domain_add("backup.test", backupmx=True, database=schema)
    pfa.domain_add("offline.test", backupmx=True, active=False, database=schema)
    pfa.domain_add("catch.test", database=schema)
    pfa.mailbox_add("alice@primary.test", "pw", quota=QUOTA, database=schema)
    pfa.mailbox_add("bob@primary.test", "pw", active=False, database=schema)
    pfa.alias_add("info@primary.test", ["alice@primary.test"], database=schema)
    pfa.alias_add("@catch.test", ["alice@primary.test"], database=schema)
    return schema


@pytest.fixture
def tables(states, seeded, lookup_database, postmap_config, tmp_path):
    """Every standard lookup table written by the state: name -> path."""
    paths = {}
    for name, entry in QUERIES.items():
        path = tmp_path / f"{name}.cf"
        ret = states.postfixadmin.lookup_table(
            name=str(path), query=entry["query"], database=lookup_database, probe=entry["probe"],
            config_dir=str(postmap_config),
        )
        assert ret.result is True, ret.comment
        paths[name] = str(path)
    return paths


EXPECTED = [
    ("relay_domains", "backup.test", "backup.test"),
    ("relay_domains", "primary.test", None),
    ("relay_domains", "offline.test", None),
    ("relay_recipient_maps", "alice@primary.test", "alice@primary.test"),
    ("relay_recipient_maps", "info@primary.test", "info@primary.test"),
    ("relay_recipient_maps", "nobody@primary.test", None),
    ("relay_recipient_maps", "bob@primary.test", None),
    ("relay_recipient_maps", "@catch.test", "@catch.test"),
    ("relay_recipient_maps", HOSTILE, None),
    ("virtual_mailbox_domains", "primary.test", "primary.test"),
    ("virtual_mailbox_domains", "backup.test", None),
    ("virtual_mailbox_maps", "alice@primary.test", "primary.test/alice/"),
    ("virtual_mailbox_maps", "bob@primary.test", None),
    ("virtual_alias_maps", "info@primary.test", "alice@primary.test"),
    ("virtual_alias_maps", "@catch.test", "alice@primary.test"),
    ("virtual_alias_maps", HOSTILE, None),
    ("virtual_mailbox_limit_maps", "alice@primary.test", str(QUOTA)),
    ("virtual_mailbox_limit_maps", "bob@primary.test", None),
    ("virtual_mailbox_limit_maps", "x' OR '1'='1@primary.test", None),
]


def test_every_standard_table_answers_from_the_database(pfa, tables, postmap_config):
    answers = [(table, key, pfa.lookup(tables[table], key, config_dir=str(postmap_config))) for table, key, _ in EXPECTED]
    assert answers == EXPECTED


def test_lookup_table_file_is_root_postfix_0640_without_the_password_in_the_return(
    states, lookup_database, postmap_config, tmp_path
):
    path = tmp_path / "relay_domains.cf"
    kwargs = dict(name=str(path), query=QUERIES["relay_domains"]["query"], database=lookup_database,
                  config_dir=str(postmap_config))

    predicted = states.postfixadmin.lookup_table(test=True, **kwargs)
    assert predicted.result is None and not path.exists()
    assert predicted.changes["password"] == {"old": None, "new": "********"}
    assert LOOKUP_PASSWORD not in str(predicted.raw)

    applied = states.postfixadmin.lookup_table(**kwargs)
    assert applied.result is True, applied.comment
    assert applied.changes == predicted.changes
    assert LOOKUP_PASSWORD not in str(applied.raw)
    info = os.stat(path)
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o640, 0, grp.getgrnam("postfix").gr_gid)
    assert f"password = {LOOKUP_PASSWORD}\n" in path.read_text()

    again = states.postfixadmin.lookup_table(**kwargs)
    assert (again.result, again.changes) == (True, {})
    assert states.postfixadmin.lookup_table(test=True, **kwargs).result is True


@pytest.mark.parametrize(
    "change, message",
    [
        ({"password": "wrong-password"}, "password authentication failed"),
        ({"dbname": "no_such_db"}, 'database "no_such_db" does not exist'),
    ],
)
def test_a_table_postmap_cannot_use_is_rolled_back(states, lookup_database, postmap_config, tmp_path, change, message):
    path = tmp_path / "virtual_mailbox_maps.cf"
    kwargs = dict(name=str(path), query=QUERIES["virtual_mailbox_maps"]["query"], config_dir=str(postmap_config))
    assert states.postfixadmin.lookup_table(database=lookup_database, **kwargs).result is True
    before = path.read_bytes()

    broken = states.postfixadmin.lookup_table(database={**lookup_database, **change}, **kwargs)
    assert broken.result is False
    assert message in broken.comment
    assert "wrong-password" not in str(broken.raw) and LOOKUP_PASSWORD not in str(broken.raw)
    assert path.read_bytes() == before


def test_a_bad_query_fails_and_leaves_no_new_file(states, lookup_database, postmap_config, tmp_path):
    path = tmp_path / "bad.cf"
    ret = states.postfixadmin.lookup_table(
        name=str(path), query="SELECT nope FROM mailbox WHERE username = '%s'", database=lookup_database,
        config_dir=str(postmap_config),
    )
    assert ret.result is False
    assert 'column "nope" does not exist' in ret.comment
    assert not path.exists()
