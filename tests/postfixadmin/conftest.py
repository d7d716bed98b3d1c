"""Fixtures for the postfixadmin module and states: roles, a fresh database
per test on the session cluster, one session database with the schema
(emptied for every test), a Postfix config dir for postmap, postfixadmin's
own code configured for a database, and an auth-only Dovecot."""

import itertools
import os
import time

import psycopg
import pytest
from psycopg import sql

from .dovecot import Dovecot
from .helpers import ADMIN, ADMIN_PASSWORD, LOOKUP, LOOKUP_PASSWORD, load_module, run_sql
from .postfixadmin_code import PostfixadminCode

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def roles(pg):
    """The admin role (owns the test databases) and the lookup role, both with TCP passwords."""
    with psycopg.connect(pg.superuser_dsn(), autocommit=True) as conn:
        for role, password in ((ADMIN, ADMIN_PASSWORD), (LOOKUP, LOOKUP_PASSWORD)):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    return {ADMIN: ADMIN_PASSWORD, LOOKUP: LOOKUP_PASSWORD}


def _superuser_sql(pg, query):
    # One connection instead of a psql process: databases come and go for every test.
    with psycopg.connect(pg.superuser_dsn(), autocommit=True) as conn:
        conn.execute(query)


def _fresh_database(pg):
    name = f"pfa_{next(_database_numbers)}"
    _superuser_sql(pg, sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(ADMIN)))
    return {"host": "127.0.0.1", "port": 5432, "dbname": name, "user": ADMIN, "password": ADMIN_PASSWORD}


def _drop_database(pg, settings):
    _superuser_sql(pg, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(settings["dbname"])))


@pytest.fixture
def database(pg, roles):
    """An empty database owned by the admin role, as a connection dict."""
    settings = _fresh_database(pg)
    yield settings
    _drop_database(pg, settings)


@pytest.fixture
def other_database(pg, roles):
    settings = _fresh_database(pg)
    yield settings
    _drop_database(pg, settings)


@pytest.fixture(scope="session")
def schema_database(pg, roles):
    """One database schema_init completed (and the formula's quota_usage table; lookup role
    granted), shared by the session:
    a CREATE DATABASE per test costs more than the test."""
    settings = _fresh_database(pg)
    load_module().schema_init(lookup_user=LOOKUP, database=settings)
    load_module().quota_usage_table(lookup_user=LOOKUP, database=settings)
    return settings


@pytest.fixture
def pfa(modules):
    return modules.postfixadmin


@pytest.fixture
def schema(schema_database):
    """The database with the schema in place and the lookup role granted, emptied for this test."""
    run_sql(schema_database,
            "TRUNCATE domain, alias, mailbox, alias_domain, domain_admins, log, vacation, quota_usage CASCADE")
    return schema_database


@pytest.fixture
def lookup_database(schema):
    return {**schema, "user": LOOKUP, "password": LOOKUP_PASSWORD}


@pytest.fixture(scope="session")
def postmap_config(sandbox_base):
    """A Postfix config dir for postmap (main.cf back-dated: no 2 s 'hot file' stall)."""
    config_dir = sandbox_base / "pfa-postmap"
    config_dir.mkdir()
    main_cf = config_dir / "main.cf"
    main_cf.write_text(f"compatibility_level = 3.6\nmaillog_file = {config_dir / 'maillog'}\n")
    past = time.time() - 60
    os.utime(main_cf, (past, past))
    return config_dir


_code_numbers = itertools.count(1)


@pytest.fixture
def postfixadmin_code(sandbox_base):
    """Make postfixadmin's own code (Debian's package) configured for a database:
    make(database, encrypt="md5crypt", **settings) -> PostfixadminCode."""

    def make(database, encrypt="md5crypt", **settings):
        base = sandbox_base / f"postfixadmin-code-{next(_code_numbers)}"
        return PostfixadminCode(base, database, encrypt, settings).install()

    return make


@pytest.fixture
def postfixadmin_database(pg, roles, postfixadmin_code):
    """A database of its own whose schema postfixadmin's own upgrade.php made (no module involved)."""
    settings = _fresh_database(pg)
    postfixadmin_code(settings).upgrade()
    yield settings
    _drop_database(pg, settings)


@pytest.fixture
def dovecot(sandbox_base):
    """Start Dovecot (auth only, no listeners) on a database: start(database) -> Dovecot."""
    started = []

    def start(database):
        instance = Dovecot(sandbox_base / f"dovecot-{next(_code_numbers)}", database).start()
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
