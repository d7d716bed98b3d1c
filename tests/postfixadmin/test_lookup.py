"""The standard queries (postfix/queries.yaml) through postmap -q, and the lookup_table state."""

import grp
import os
import time

import pytest

from tests.harness import salt_modules

from .helpers import LOOKUP_PASSWORD, QUERIES, run_sql

QUOTA = 1073741824
#: the message_size_limit the quota check's query is made for
SIZE_LIMIT = 10240000
HOSTILE = "x' OR '1'='1@primary.test"
HEADER = "# Managed by Salt (postfixadmin.lookup_table). Do not edit.\n"


def table_text(query, database):
    """The pgsql_table(5) file lookup_table writes for QUERY and DATABASE (no sslmode)."""
    return HEADER + (
        f"hosts = inet:{database['host']}:{database['port']}\n"
        f"user = {database['user']}\npassword = {database['password']}\ndbname = {database['dbname']}\n"
        f"query = {' '.join(query.split())}\n"
    )


def write_table(path, query, database):
    """Write a table file like lookup_table does, back-dated: Postfix re-reads a file changed
    within the last ~2 s after sleeping (load_file's hot-file guard), which costs 2 s a table."""
    path.write_text(table_text(query, database))
    past = time.time() - 60
    os.utime(path, (past, past))
    return str(path)


@pytest.fixture
def seeded(pfa, schema):
    pfa.domain_add("primary.test", database=schema)
    pfa.domain_add("backup.test", backupmx=True, database=schema)
    pfa.domain_add("offline.test", backupmx=True, active=False, database=schema)
    pfa.domain_add("catch.test", database=schema)
    pfa.mailbox_add("alice@primary.test", "pw", quota=QUOTA, database=schema)
    pfa.mailbox_add("bob@primary.test", "pw", active=False, database=schema)
    # the quota check: carol has room for the largest message, dave not, erin has no quota
    for name, quota in (("carol", QUOTA), ("dave", QUOTA), ("erin", 0)):
        pfa.mailbox_add(f"{name}@primary.test", "pw", quota=quota, database=schema)
    run_sql(schema, """INSERT INTO quota_usage (username, bytes, messages) VALUES
        ('carol@primary.test', %s, 1), ('dave@primary.test', %s, 9), ('erin@primary.test', %s, 9)""",
            (QUOTA - SIZE_LIMIT, QUOTA - SIZE_LIMIT + 1, QUOTA))
    # the quota check vouches only for mailboxes of active non-backup domains
    pfa.mailbox_add("frank@backup.test", "pw", database=schema)
    pfa.domain_add("closed.test", active=False, database=schema)
    pfa.mailbox_add("gina@closed.test", "pw", database=schema)
    pfa.alias_add("info@primary.test", ["alice@primary.test"], database=schema)
    pfa.alias_add("@catch.test", ["alice@primary.test"], database=schema)
    for domain in ("alias.test", "catchalias.test", "offalias.test"):
        pfa.domain_add(domain, database=schema)
    run_sql(schema, """INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES
        ('alias.test', 'primary.test', true), ('catchalias.test', 'catch.test', true),
        ('offalias.test', 'primary.test', false)""")
    return schema


@pytest.fixture
def tables(seeded, lookup_database, tmp_path):
    """Every standard lookup table as lookup_table writes it (see the 0640 test): name -> path."""
    records = salt_modules.load("modules", "postfix_records")
    settings = {"hardening": {"message_size_limit": SIZE_LIMIT}, "main": {}}
    return {name: write_table(tmp_path / f"{name}.cf", records.table_query(settings, entry["query"]), lookup_database)
            for name, entry in QUERIES.items()}


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
    ("virtual_alias_domain_maps", "info@alias.test", "alice@primary.test"),
    ("virtual_alias_domain_maps", "alice@alias.test", "alice@primary.test"),
    ("virtual_alias_domain_maps", "nobody@alias.test", None),
    ("virtual_alias_domain_maps", "info@offalias.test", None),
    ("virtual_alias_domain_maps", "info@primary.test", None),
    ("virtual_alias_domain_maps", "x' OR '1'='1@alias.test", None),
    ("virtual_alias_domain_catchall_maps", "anyone@catchalias.test", "alice@primary.test"),
    ("virtual_alias_domain_catchall_maps", "anyone@alias.test", None),
    ("virtual_alias_domain_catchall_maps", "anyone@catch.test", None),
    ("virtual_alias_domain_mailbox_maps", "alice@alias.test", "primary.test/alice/"),
    ("virtual_alias_domain_mailbox_maps", "bob@alias.test", None),
    ("virtual_alias_domain_mailbox_maps", "alice@offalias.test", None),
    ("virtual_alias_domain_mailbox_maps", "alice@primary.test", None),
    ("virtual_alias_domain_mailbox_maps", "alice@x' OR '1'='1", None),
    ("quota_check", "alice@primary.test", "quota_status"),  # no usage known yet
    ("quota_check", "carol@primary.test", "OK"),
    ("quota_check", "dave@primary.test", "quota_status"),
    ("quota_check", "erin@primary.test", "OK"),
    ("quota_check", "bob@primary.test", None),
    ("quota_check", "info@primary.test", None),
    ("quota_check", "frank@backup.test", None),
    ("quota_check", "gina@closed.test", None),
    ("quota_check", "alice@alias.test", None),
    ("quota_check", "primary.test", None),
    ("quota_check", HOSTILE, None),
]


def test_every_standard_table_answers_from_the_database(pfa, tables, postmap_config):
    answers = [(table, key, pfa.lookup(tables[table], key, config_dir=str(postmap_config))) for table, key, _ in EXPECTED]
    assert answers == EXPECTED
    assert {table for table, _, _ in EXPECTED} == set(QUERIES)


def test_every_probe_runs_its_query_and_finds_nothing(pfa, tables, postmap_config):
    """What lookup_table's proof does: any Postfix warning (a query that did not run) raises."""
    config_dir = str(postmap_config)
    probes = {name: pfa.lookup(tables[name], entry["probe"], config_dir=config_dir) for name, entry in QUERIES.items()}
    assert probes == dict.fromkeys(QUERIES)


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
    assert path.read_text() == table_text(QUERIES["relay_domains"]["query"], lookup_database)

    again = states.postfixadmin.lookup_table(**kwargs)
    assert (again.result, again.changes) == (True, {})
    assert states.postfixadmin.lookup_table(test=True, **kwargs).result is True


def test_taking_over_a_hand_written_table_shows_no_password_it_held(states, lookup_database, postmap_config,
                                                                    tmp_path):
    """A table written by hand may hold its password inside hosts or dbname (a URI, a conninfo)."""
    path = tmp_path / "relay_domains.cf"
    path.write_text("hosts = postgresql://postfix:H4nd-Written-S3cret@db1/postfixadmin\n"
                    "dbname = postfixadmin?password=H4nd-Written-S3cret\nquery = SELECT 1\n")
    kwargs = dict(name=str(path), query=QUERIES["relay_domains"]["query"], database=lookup_database,
                  config_dir=str(postmap_config))
    for ret in (states.postfixadmin.lookup_table(test=True, **kwargs), states.postfixadmin.lookup_table(**kwargs)):
        assert ret.result is not False, ret.comment
        assert ret.changes["hosts"]["old"] == "postgresql://postfix:********@db1/postfixadmin"
        assert "H4nd-Written-S3cret" not in str(ret.raw)


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
    write_table(path, kwargs["query"], lookup_database)
    os.chown(path, 0, grp.getgrnam("postfix").gr_gid)
    os.chmod(path, 0o640)
    assert states.postfixadmin.lookup_table(database=lookup_database, **kwargs).changes == {}
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


def test_sslmode_is_honoured(states, pfa, seeded, lookup_database, postmap_config, tmp_path):
    path = tmp_path / "relay_domains.cf"
    kwargs = dict(name=str(path), query=QUERIES["relay_domains"]["query"], config_dir=str(postmap_config))
    bad = states.postfixadmin.lookup_table(database={**lookup_database, "sslmode": "sometimes"}, **kwargs)
    assert bad.result is False and "sslmode must be one of disable, allow, prefer" in bad.comment
    assert not path.exists()

    plain = states.postfixadmin.lookup_table(database={**lookup_database, "sslmode": "disable"}, **kwargs)
    assert plain.result is True, plain.comment
    assert f"\ndbname = postgresql:///{lookup_database['dbname']}?sslmode=disable\n" in path.read_text()
    assert pfa.lookup(str(path), "backup.test", config_dir=str(postmap_config)) == "backup.test"

    # The test cluster has no TLS: Postfix failing on "require" shows the setting reaches libpq.
    before = path.read_bytes()
    required = states.postfixadmin.lookup_table(database={**lookup_database, "sslmode": "require"}, **kwargs)
    assert required.result is False
    assert "server does not support SSL, but SSL was required" in required.comment
    assert LOOKUP_PASSWORD not in str(required.raw)
    assert path.read_bytes() == before


def test_a_socket_directory_host_connects_over_the_unix_socket(states, pfa, pg, seeded, lookup_database,
                                                               postmap_config, tmp_path):
    """host: the directory of PostgreSQL's socket (libpq's convention). The test cluster trusts its
    socket but wants a password over TCP, so a wrong password found proves the socket was used."""
    path = tmp_path / "relay_domains.cf"
    socket = {**lookup_database, "host": str(pg.sockdir), "password": "not-the-password"}
    kwargs = dict(name=str(path), query=QUERIES["relay_domains"]["query"], config_dir=str(postmap_config))
    ret = states.postfixadmin.lookup_table(database=socket, **kwargs)
    assert ret.result is True, ret.comment
    text = path.read_text()
    assert f"\nhosts = unix:{pg.sockdir}\n" in text
    assert f"\ndbname = postgresql:///{lookup_database['dbname']}?port={pg.port}\n" in text
    assert pfa.lookup(str(path), "backup.test", config_dir=str(postmap_config)) == "backup.test"

    wrong_port = states.postfixadmin.lookup_table(database={**socket, "port": pg.port + 1}, **kwargs)
    assert wrong_port.result is False
    assert f"{pg.sockdir}/.s.PGSQL.{pg.port + 1}" in wrong_port.comment, "the port names the socket"
    assert path.read_text() == text
