"""schema_init on an empty database and on one postfixadmin itself created."""

import psycopg
import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from .helpers import LOOKUP, LOOKUP_PASSWORD, run_sql

# What postfixadmin's setup.php (upgrade.php, PostgreSQL) leaves behind: its
# create statements, then its later ALTERs (local_part, bigint quotas,
# password recovery and expiry columns), plus tables this module never
# touches and the pseudo domain ALL.
POSTFIXADMIN_DDL = """
CREATE TABLE config (id SERIAL, name VARCHAR(20) NOT NULL UNIQUE, value VARCHAR(20) NOT NULL, PRIMARY KEY(id));
INSERT INTO config (name, value) VALUES ('version', '1847');
CREATE TABLE domain (
    domain character varying(255) NOT NULL,
    description character varying(255) NOT NULL default '',
    aliases integer NOT NULL default 0,
    mailboxes integer NOT NULL default 0,
    maxquota integer NOT NULL default 0,
    quota integer NOT NULL default 0,
    transport character varying(255) default NULL,
    backupmx boolean NOT NULL default false,
    created timestamp with time zone default now(),
    modified timestamp with time zone default now(),
    active boolean NOT NULL default true,
    Constraint "domain_key" Primary Key ("domain"));
CREATE INDEX domain_domain_active ON domain(domain,active);
CREATE TABLE alias (
    address character varying(255) NOT NULL,
    goto text NOT NULL,
    domain character varying(255) NOT NULL REFERENCES "domain",
    created timestamp with time zone default now(),
    modified timestamp with time zone default now(),
    active boolean NOT NULL default true,
    Constraint "alias_key" Primary Key ("address"));
CREATE TABLE domain_admins (
    username character varying(255) NOT NULL,
    domain character varying(255) NOT NULL REFERENCES "domain",
    created timestamp with time zone default now(),
    active boolean NOT NULL default true);
CREATE TABLE mailbox (
    username character varying(255) NOT NULL,
    password character varying(255) NOT NULL default '',
    name character varying(255) NOT NULL default '',
    maildir character varying(255) NOT NULL default '',
    quota integer NOT NULL default 0,
    created timestamp with time zone default now(),
    modified timestamp with time zone default now(),
    active boolean NOT NULL default true,
    Constraint "mailbox_key" Primary Key ("username"));
ALTER TABLE mailbox ADD COLUMN domain varchar(255) REFERENCES domain (domain);
CREATE TABLE alias_domain (
    alias_domain character varying(255) NOT NULL REFERENCES domain(domain) ON DELETE CASCADE,
    target_domain character varying(255) NOT NULL REFERENCES domain(domain) ON DELETE CASCADE,
    created timestamp with time zone default now(),
    modified timestamp with time zone default now(),
    active boolean NOT NULL default true,
    PRIMARY KEY(alias_domain));
ALTER TABLE mailbox add column local_part varchar(255);
ALTER TABLE mailbox alter column local_part SET NOT NULL;
CREATE INDEX mailbox_domain_idx ON mailbox(domain);
CREATE INDEX alias_domain_idx ON alias(domain);
ALTER TABLE domain ALTER COLUMN quota type bigint;
ALTER TABLE domain ALTER COLUMN maxquota type bigint;
ALTER TABLE mailbox ALTER COLUMN quota type bigint;
ALTER TABLE mailbox ADD COLUMN phone varchar(30) NOT NULL DEFAULT '';
ALTER TABLE mailbox ADD COLUMN email_other varchar(255) NOT NULL DEFAULT '';
ALTER TABLE mailbox ADD COLUMN token varchar(255) NOT NULL DEFAULT '';
ALTER TABLE mailbox ADD COLUMN token_validity timestamp with time zone default '2000-01-01';
ALTER TABLE mailbox ADD COLUMN password_expiry timestamp with time zone default '2000-01-01';
ALTER TABLE domain ADD COLUMN password_expiry int DEFAULT 0;
INSERT INTO domain (domain, description, transport) VALUES ('ALL', '', '');
"""

COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name IN ('domain', 'mailbox', 'alias', 'alias_domain')
ORDER BY table_name, column_name
"""

ALL_GRANTS = [
    "SELECT ON domain TO pfa_lookup",
    "SELECT ON alias TO pfa_lookup",
    "SELECT ON alias_domain TO pfa_lookup",
    "SELECT (username, maildir, quota, local_part, domain, active) ON mailbox TO pfa_lookup",
]


def lookup_role(database):
    return {**database, "user": LOOKUP, "password": LOOKUP_PASSWORD}


def test_schema_init_on_an_empty_database_then_nothing_to_do(pfa, database):
    assert pfa.schema_pending(lookup_user=LOOKUP, database=database) == {
        "created": ["domain", "alias", "mailbox", "alias_domain"], "granted": ALL_GRANTS,
    }
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == {
        "created": ["domain", "alias", "mailbox", "alias_domain"], "granted": ALL_GRANTS,
    }
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == {"created": [], "granted": []}
    assert pfa.schema_pending(lookup_user=LOOKUP, database=database) == {"created": [], "granted": []}


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


def test_schema_init_on_a_postfixadmin_database_only_grants(pfa, database):
    run_sql(database, POSTFIXADMIN_DDL)
    before = run_sql(database, COLUMNS)
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == {"created": [], "granted": ALL_GRANTS}
    assert run_sql(database, COLUMNS) == before
    assert pfa.schema_init(lookup_user=LOOKUP, database=database) == {"created": [], "granted": []}

    pfa.domain_add("example.test", database=database)
    pfa.mailbox_add("alice@example.test", "pw", quota=9223372036854774784, database=database)
    pfa.alias_add("info@example.test", ["alice@example.test"], database=database)
    assert [d["domain"] for d in pfa.domain_list(database=database)] == ["example.test"]
    assert pfa.mailbox_get("alice@example.test", database=database)["quota"] == 9223372036854774784
    assert pfa.domain_delete("example.test", database=database) is True


def test_created_tables_have_postfixadmins_columns(pfa, database, other_database):
    run_sql(other_database, POSTFIXADMIN_DDL)
    pfa.schema_init(database=database)
    assert run_sql(database, COLUMNS) == run_sql(other_database, COLUMNS)


def test_an_unknown_lookup_role_is_refused_before_anything_is_created(pfa, database):
    with pytest.raises(SaltInvocationError, match="lookup role 'nobody_here' does not exist"):
        pfa.schema_init(lookup_user="nobody_here", database=database)
    assert run_sql(database, "SELECT to_regclass('domain')") == [(None,)]


def test_domain_delete_blocked_by_another_postfixadmin_table_deletes_nothing(pfa, database):
    run_sql(database, POSTFIXADMIN_DDL)
    pfa.domain_add("example.test", database=database)
    pfa.mailbox_add("alice@example.test", "pw", database=database)
    run_sql(database, "INSERT INTO domain_admins (username, domain) VALUES ('admin@example.test', 'example.test')")
    with pytest.raises(CommandExecutionError, match="domain_admins"):
        pfa.domain_delete("example.test", database=database)
    assert pfa.mailbox_get("alice@example.test", database=database) is not None
    assert pfa.alias_get("alice@example.test", database=database) is not None
