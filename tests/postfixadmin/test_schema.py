"""schema_init against postfixadmin's own upgrade.php (Debian's postfixadmin 3.3 package)."""

import psycopg
import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from .helpers import LOOKUP, LOOKUP_PASSWORD, run_sql

#: What makes two schemas the same for postfixadmin (and Dovecot's quota
#: triggers): columns in order with types and defaults, constraints, indexes,
#: triggers, functions, sequences, table comments, the recorded version.
CATALOG = {
    "columns": """SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, column_default
                  FROM information_schema.columns WHERE table_schema = 'public'
                  ORDER BY table_name, ordinal_position""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                      FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "triggers": """SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
                   FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
    "functions": """SELECT proname, pg_get_function_arguments(oid), pg_get_function_result(oid)
                    FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1""",
    "sequences": "SELECT sequence_name, data_type FROM information_schema.sequences ORDER BY 1",
    "comments": """SELECT relname, obj_description(oid, 'pg_class') FROM pg_class
                   WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1""",
    "version": "SELECT id, name, value FROM config ORDER BY id",
}

TABLES = ["config", "domain", "admin", "alias", "alias_domain", "domain_admins", "fetchmail", "log", "mailbox",
          "quota", "quota2", "vacation", "vacation_notification"]
ALL_GRANTS = [
    "SELECT ON domain TO pfa_lookup",
    "SELECT ON alias TO pfa_lookup",
    "SELECT ON alias_domain TO pfa_lookup",
    "SELECT (username, maildir, quota, local_part, domain, active) ON mailbox TO pfa_lookup",
]
NOTHING = {"created": [], "version": None, "granted": []}

#: The four tables (postfixadmin's columns) earlier versions of this module created, without config.
EARLIER_MODULE_DDL = """
CREATE TABLE domain (domain varchar(255) NOT NULL, description varchar(255) NOT NULL DEFAULT '',
    aliases integer NOT NULL DEFAULT 0, mailboxes integer NOT NULL DEFAULT 0, maxquota bigint NOT NULL DEFAULT 0,
    quota bigint NOT NULL DEFAULT 0, transport varchar(255) DEFAULT NULL, backupmx boolean NOT NULL DEFAULT false,
    created timestamptz DEFAULT now(), modified timestamptz DEFAULT now(), active boolean NOT NULL DEFAULT true,
    password_expiry integer DEFAULT 0, CONSTRAINT domain_key PRIMARY KEY (domain));
CREATE INDEX domain_domain_active ON domain (domain, active);
CREATE TABLE alias (address varchar(255) NOT NULL, goto text NOT NULL,
    domain varchar(255) NOT NULL REFERENCES domain, created timestamptz DEFAULT now(),
    modified timestamptz DEFAULT now(), active boolean NOT NULL DEFAULT true,
    CONSTRAINT alias_key PRIMARY KEY (address));
CREATE TABLE mailbox (username varchar(255) NOT NULL, password varchar(255) NOT NULL DEFAULT '',
    name varchar(255) NOT NULL DEFAULT '', maildir varchar(255) NOT NULL DEFAULT '', quota bigint NOT NULL DEFAULT 0,
    domain varchar(255) REFERENCES domain (domain), created timestamptz DEFAULT now(),
    modified timestamptz DEFAULT now(), active boolean NOT NULL DEFAULT true, local_part varchar(255) NOT NULL,
    phone varchar(30) NOT NULL DEFAULT '', email_other varchar(255) NOT NULL DEFAULT '',
    token varchar(255) NOT NULL DEFAULT '', token_validity timestamptz DEFAULT '2000-01-01',
    password_expiry timestamptz DEFAULT '2000-01-01', CONSTRAINT mailbox_key PRIMARY KEY (username));
CREATE TABLE alias_domain (alias_domain varchar(255) NOT NULL REFERENCES domain (domain) ON DELETE CASCADE,
    target_domain varchar(255) NOT NULL REFERENCES domain (domain) ON DELETE CASCADE,
    created timestamptz DEFAULT now(), modified timestamptz DEFAULT now(), active boolean NOT NULL DEFAULT true,
    PRIMARY KEY (alias_domain));
INSERT INTO domain (domain) VALUES ('kept.test');
"""


def catalog(database):
    with psycopg.connect(**database) as conn:
        return {key: conn.execute(query).fetchall() for key, query in CATALOG.items()}


def lookup_role(database):
    return {**database, "user": LOOKUP, "password": LOOKUP_PASSWORD}


def test_schema_init_makes_the_schema_postfixadmins_upgrade_php_makes(pfa, database, postfixadmin_database):
    done = pfa.schema_init(database=database)
    assert [name.split(" ", 1)[1] for name in done["created"] if name.startswith("table ")] == TABLES
    assert done["version"] == 1847
    assert catalog(database) == catalog(postfixadmin_database)
    assert run_sql(database, "SELECT name, value FROM config") == [("version", "1847")]


def test_postfixadmins_setup_finds_nothing_to_do_on_a_module_made_database(pfa, database, postfixadmin_code):
    pfa.schema_init(database=database)
    before = catalog(database)
    output = postfixadmin_code(database).upgrade()
    assert "Database is up to date: 1847/1847" in output
    assert catalog(database) == before


def test_schema_init_then_nothing_to_do(pfa, database):
    pending = pfa.schema_pending(lookup_user=LOOKUP, database=database)
    assert (pending["version"], pending["granted"]) == (1847, ALL_GRANTS)
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == pending
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == NOTHING
    assert pfa.schema_pending(lookup_user=LOOKUP, database=database) == NOTHING


def test_on_a_postfixadmin_database_only_grants_are_given(pfa, postfixadmin_database):
    before = catalog(postfixadmin_database)
    assert pfa.schema_init(lookup_user=LOOKUP, database=postfixadmin_database) == {**NOTHING, "granted": ALL_GRANTS}
    assert catalog(postfixadmin_database) == before
    assert pfa.schema_init(lookup_user=LOOKUP, database=postfixadmin_database) == NOTHING


def test_a_newer_postfixadmin_database_is_left_alone(pfa, postfixadmin_database):
    run_sql(postfixadmin_database, "UPDATE config SET value = '1900' WHERE name = 'version'; DROP TABLE quota2")
    assert pfa.schema_init(database=postfixadmin_database) == NOTHING
    assert run_sql(postfixadmin_database, "SELECT to_regclass('quota2')") == [(None,)]


def test_an_older_postfixadmin_database_is_refused_and_nothing_changes(pfa, postfixadmin_database):
    run_sql(postfixadmin_database, "UPDATE config SET value = '1840' WHERE name = 'version'; DROP TABLE quota2")
    before = catalog(postfixadmin_database)
    message = r"version 1840, older than 1847 \(postfixadmin 3.3\): upgrade it with postfixadmin's setup.php"
    with pytest.raises(CommandExecutionError, match=message):
        pfa.schema_pending(lookup_user=LOOKUP, database=postfixadmin_database)
    with pytest.raises(CommandExecutionError, match=message):
        pfa.schema_init(lookup_user=LOOKUP, database=postfixadmin_database)
    assert catalog(postfixadmin_database) == before
    assert run_sql(lookup_role(postfixadmin_database), "SELECT has_table_privilege('domain', 'SELECT')") == [(False,)]


def test_a_database_an_earlier_module_made_is_completed(pfa, database, postfixadmin_database):
    run_sql(database, EARLIER_MODULE_DDL)
    done = pfa.schema_init(database=database)
    assert "table domain" not in done["created"] and "table config" in done["created"]
    assert {"index alias_domain_idx", "index mailbox_domain_idx"} <= set(done["created"])
    assert run_sql(database, "SELECT domain FROM domain") == [("kept.test",)]
    ours, theirs = catalog(database), catalog(postfixadmin_database)
    for key in ("indexes", "triggers", "functions", "sequences", "version"):
        assert ours[key] == theirs[key], key


def test_the_quota_triggers_merge_dovecots_inserts(pfa, database, postfixadmin_database):
    """Dovecot's dict quota INSERTs usage; the triggers fold it into the existing row."""
    pfa.schema_init(database=database)
    for db in (database, postfixadmin_database):
        run_sql(db, """INSERT INTO quota2 (username, bytes, messages) VALUES ('a@x.test', 100, 1);
                       INSERT INTO quota2 (username, bytes, messages) VALUES ('a@x.test', 50, 2);
                       INSERT INTO quota (username, path, current) VALUES ('a@x.test', 'quota/storage', 7);
                       INSERT INTO quota (username, path, current) VALUES ('a@x.test', 'quota/storage', 5)""")
        assert run_sql(db, "SELECT username, bytes, messages FROM quota2") == [("a@x.test", 150, 3)]
        assert run_sql(db, "SELECT current FROM quota") == [(12,)]


def test_the_lookup_role_reads_what_postfix_needs_and_no_password(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("alice@example.test", "pw", quota=5, database=schema)
    lookup = lookup_role(schema)
    assert run_sql(lookup, "SELECT maildir, quota FROM mailbox WHERE local_part = 'alice'") == [("example.test/alice/", 5)]
    assert run_sql(lookup, "SELECT goto FROM alias") == [("alice@example.test",)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        run_sql(lookup, "SELECT password FROM mailbox")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        run_sql(lookup, "DELETE FROM domain")


def test_an_unknown_lookup_role_is_refused_before_anything_is_created(pfa, database):
    with pytest.raises(SaltInvocationError, match="lookup role 'nobody_here' does not exist"):
        pfa.schema_init(lookup_user="nobody_here", database=database)
    assert run_sql(database, "SELECT to_regclass('domain')") == [(None,)]


def test_domain_delete_blocked_by_another_postfixadmin_table_deletes_nothing(pfa, postfixadmin_database):
    database = postfixadmin_database
    pfa.domain_add("example.test", database=database)
    pfa.mailbox_add("alice@example.test", "pw", database=database)
    run_sql(database, "INSERT INTO domain_admins (username, domain) VALUES ('admin@example.test', 'example.test')")
    with pytest.raises(CommandExecutionError, match="domain_admins"):
        pfa.domain_delete("example.test", database=database)
    assert pfa.mailbox_get("alice@example.test", database=database) is not None
    assert pfa.alias_get("alice@example.test", database=database) is not None


def test_quota_usage_table_is_made_once_beside_postfixadmins_schema(pfa, postfixadmin_database):
    """The formula's own table, also on a database postfixadmin made (its schema left as it was)."""
    database = postfixadmin_database
    before = catalog(database)
    wanted = {"created": "table quota_usage", "granted": f"SELECT ON quota_usage TO {LOOKUP}"}
    assert pfa.quota_usage_table(lookup_user=LOOKUP, database=database, dry_run=True) == wanted
    assert run_sql(database, "SELECT to_regclass('quota_usage')") == [(None,)]
    assert pfa.quota_usage_table(lookup_user=LOOKUP, database=database) == wanted
    assert pfa.quota_usage_table(lookup_user=LOOKUP, database=database) == {}
    after = catalog(database)
    assert [row for row in after["columns"] if row[0] != "quota_usage"] == before["columns"]
    assert [row[1] for row in after["columns"] if row[0] == "quota_usage"] == ["username", "bytes", "messages"]
    # Dovecot's quota_clone sets absolute values: a second write replaces the first
    for usage in ((100, 1), (40, 2)):
        run_sql(database, """INSERT INTO quota_usage (username, bytes, messages) VALUES ('a@x.test', %s, %s)
                             ON CONFLICT (username) DO UPDATE SET bytes = EXCLUDED.bytes, messages = EXCLUDED.messages""",
                usage)
    lookup = lookup_role(database)
    assert run_sql(lookup, "SELECT bytes, messages FROM quota_usage") == [(40, 2)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        run_sql(lookup, "DELETE FROM quota_usage")


def test_quota_usage_table_refuses_an_unknown_lookup_role(pfa, database):
    with pytest.raises(SaltInvocationError, match="lookup role 'nobody_here' does not exist"):
        pfa.quota_usage_table(lookup_user="nobody_here", database=database)
    assert run_sql(database, "SELECT to_regclass('quota_usage')") == [(None,)]
