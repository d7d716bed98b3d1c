"""
postfixadmin's own PostgreSQL schema (postfixadmin 3.3, database version 1847)
on a database: what is missing and creating it. Part of ``postfixadmin.*``
(see ``postfixadmin.py`` for the connection settings).

CLI Example:

.. code-block:: bash

    salt '*' postfixadmin.schema_init lookup_user=postfix
"""

import importlib

from salt.exceptions import CommandExecutionError, SaltInvocationError

# Shared with the other postfixadmin* modules. Not Salt modules themselves (the loader
# skips names starting with "_"), so reloaded here: code saltutil.sync_modules brings
# then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postfixadmin_fields"))
importlib.reload(importlib.import_module("_postfixadmin_db"))
from _postfixadmin_db import (  # noqa: E402
    _Transaction,
    _grant,
    _grant_text,
    _missing_grants,
    _role_exists,
    _table_exists,
    available,
)
from _postfixadmin_fields import (  # noqa: E402
    _text,
)

__virtualname__ = "postfixadmin"


def __virtual__():
    return available(__virtualname__)


#: The postfixadmin release whose PostgreSQL schema schema_init creates, and
#: the database version its upgrade.php records for it in config (name
#: 'version'): postfixadmin 3.3.x, whose last upgrade step is 1847.
POSTFIXADMIN_RELEASE = "3.3"
SCHEMA_VERSION = 1847

# postfixadmin 3.3's PostgreSQL schema as its upgrade.php leaves it (same
# tables, columns in the same order, types, defaults, constraint and index
# names), one (kind, name, SQL) per object, in creation order. Each object is
# created only where it is missing, so a database holding part of it (made by
# an earlier version of this module: domain, alias, mailbox, alias_domain) is
# completed.
_SCHEMA = (
    ("table", "config", """
        CREATE TABLE config (
            id serial PRIMARY KEY,
            name character varying(20) NOT NULL UNIQUE,
            value character varying(20) NOT NULL
        )
    """),
    ("table", "domain", """
        CREATE TABLE domain (
            domain character varying(255) NOT NULL,
            description character varying(255) NOT NULL DEFAULT '',
            aliases integer NOT NULL DEFAULT 0,
            mailboxes integer NOT NULL DEFAULT 0,
            maxquota bigint NOT NULL DEFAULT 0,
            quota bigint NOT NULL DEFAULT 0,
            transport character varying(255) DEFAULT NULL,
            backupmx boolean NOT NULL DEFAULT false,
            created timestamp with time zone DEFAULT now(),
            modified timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            password_expiry integer DEFAULT 0,
            CONSTRAINT domain_key PRIMARY KEY (domain)
        );
        COMMENT ON TABLE domain IS 'Postfix Admin - Virtual Domains'
    """),
    ("table", "admin", """
        CREATE TABLE admin (
            username character varying(255) NOT NULL,
            password character varying(255) NOT NULL DEFAULT '',
            created timestamp with time zone DEFAULT now(),
            modified timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            superadmin boolean NOT NULL DEFAULT false,
            phone character varying(30) NOT NULL DEFAULT '',
            email_other character varying(255) NOT NULL DEFAULT '',
            token character varying(255) NOT NULL DEFAULT '',
            token_validity timestamp with time zone DEFAULT '2000-01-01',
            CONSTRAINT admin_key PRIMARY KEY (username)
        );
        COMMENT ON TABLE admin IS 'Postfix Admin - Virtual Admins'
    """),
    ("table", "alias", """
        CREATE TABLE alias (
            address character varying(255) NOT NULL,
            goto text NOT NULL,
            domain character varying(255) NOT NULL,
            created timestamp with time zone DEFAULT now(),
            modified timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            CONSTRAINT alias_key PRIMARY KEY (address),
            CONSTRAINT alias_domain_fkey FOREIGN KEY (domain) REFERENCES domain (domain)
        );
        COMMENT ON TABLE alias IS 'Postfix Admin - Virtual Aliases'
    """),
    ("table", "alias_domain", """
        CREATE TABLE alias_domain (
            alias_domain character varying(255) NOT NULL,
            target_domain character varying(255) NOT NULL,
            created timestamp with time zone DEFAULT now(),
            modified timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            CONSTRAINT alias_domain_pkey PRIMARY KEY (alias_domain),
            CONSTRAINT alias_domain_alias_domain_fkey FOREIGN KEY (alias_domain)
                REFERENCES domain (domain) ON DELETE CASCADE,
            CONSTRAINT alias_domain_target_domain_fkey FOREIGN KEY (target_domain)
                REFERENCES domain (domain) ON DELETE CASCADE
        );
        COMMENT ON TABLE alias_domain IS 'Postfix Admin - Domain Aliases'
    """),
    ("table", "domain_admins", """
        CREATE TABLE domain_admins (
            username character varying(255) NOT NULL,
            domain character varying(255) NOT NULL,
            created timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            id serial,
            CONSTRAINT domain_admins_pkey PRIMARY KEY (id),
            CONSTRAINT domain_admins_domain_fkey FOREIGN KEY (domain) REFERENCES domain (domain)
        );
        COMMENT ON TABLE domain_admins IS 'Postfix Admin - Domain Admins'
    """),
    ("table", "fetchmail", """
        CREATE TABLE fetchmail (
            id serial,
            mailbox character varying(255) NOT NULL DEFAULT '',
            src_server character varying(255) NOT NULL DEFAULT '',
            src_auth character varying(15) NOT NULL CHECK (src_auth IN (
                'password', 'kerberos_v5', 'kerberos', 'kerberos_v4', 'gssapi', 'cram-md5', 'otp', 'ntlm',
                'msn', 'ssh', 'any')),
            src_user character varying(255) NOT NULL DEFAULT '',
            src_password character varying(255) NOT NULL DEFAULT '',
            src_folder character varying(255) NOT NULL DEFAULT '',
            poll_time integer NOT NULL DEFAULT 10,
            fetchall boolean NOT NULL DEFAULT false,
            keep boolean NOT NULL DEFAULT false,
            protocol character varying(15) NOT NULL CHECK (protocol IN ('POP3', 'IMAP', 'POP2', 'ETRN', 'AUTO')),
            extra_options text,
            returned_text text,
            mda character varying(255) NOT NULL DEFAULT '',
            date timestamp with time zone DEFAULT now(),
            usessl boolean NOT NULL DEFAULT false,
            sslcertck boolean NOT NULL DEFAULT false,
            sslcertpath character varying(255) DEFAULT '',
            sslfingerprint character varying(255) DEFAULT '',
            domain character varying(255) DEFAULT '',
            active boolean NOT NULL DEFAULT false,
            created timestamp with time zone DEFAULT '2000-01-01',
            modified timestamp with time zone DEFAULT now(),
            src_port integer NOT NULL DEFAULT 0,
            CONSTRAINT fetchmail_pkey PRIMARY KEY (id)
        )
    """),
    ("table", "log", """
        CREATE TABLE log (
            "timestamp" timestamp with time zone DEFAULT now(),
            username character varying(255) NOT NULL DEFAULT '',
            domain character varying(255) NOT NULL DEFAULT '',
            action character varying(255) NOT NULL DEFAULT '',
            data text NOT NULL DEFAULT '',
            id serial,
            CONSTRAINT log_pkey PRIMARY KEY (id)
        );
        COMMENT ON TABLE log IS 'Postfix Admin - Log'
    """),
    ("table", "mailbox", """
        CREATE TABLE mailbox (
            username character varying(255) NOT NULL,
            password character varying(255) NOT NULL DEFAULT '',
            name character varying(255) NOT NULL DEFAULT '',
            maildir character varying(255) NOT NULL DEFAULT '',
            quota bigint NOT NULL DEFAULT 0,
            created timestamp with time zone DEFAULT now(),
            modified timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            domain character varying(255),
            local_part character varying(255) NOT NULL,
            phone character varying(30) NOT NULL DEFAULT '',
            email_other character varying(255) NOT NULL DEFAULT '',
            token character varying(255) NOT NULL DEFAULT '',
            token_validity timestamp with time zone DEFAULT '2000-01-01',
            password_expiry timestamp with time zone DEFAULT '2000-01-01',
            CONSTRAINT mailbox_key PRIMARY KEY (username),
            CONSTRAINT mailbox_domain_fkey1 FOREIGN KEY (domain) REFERENCES domain (domain)
        );
        COMMENT ON TABLE mailbox IS 'Postfix Admin - Virtual Mailboxes'
    """),
    ("table", "quota", """
        CREATE TABLE quota (
            username character varying(255) NOT NULL,
            path character varying(100) NOT NULL,
            current bigint NOT NULL DEFAULT 0,
            CONSTRAINT quota_pkey PRIMARY KEY (username, path)
        )
    """),
    ("table", "quota2", """
        CREATE TABLE quota2 (
            username character varying(100) NOT NULL,
            bytes bigint NOT NULL DEFAULT 0,
            messages integer NOT NULL DEFAULT 0,
            CONSTRAINT quota2_pkey PRIMARY KEY (username)
        )
    """),
    ("table", "vacation", """
        CREATE TABLE vacation (
            email character varying(255) NOT NULL,
            subject character varying(255) NOT NULL,
            body text NOT NULL DEFAULT '',
            created timestamp with time zone DEFAULT now(),
            active boolean NOT NULL DEFAULT true,
            domain character varying(255),
            modified timestamp with time zone DEFAULT now(),
            activefrom timestamp with time zone DEFAULT '2000-01-01',
            activeuntil timestamp with time zone DEFAULT '2038-01-18',
            interval_time integer NOT NULL DEFAULT 0,
            CONSTRAINT vacation_pkey PRIMARY KEY (email),
            CONSTRAINT vacation_domain_fkey1 FOREIGN KEY (domain) REFERENCES domain (domain)
        )
    """),
    ("table", "vacation_notification", """
        CREATE TABLE vacation_notification (
            on_vacation character varying(255) NOT NULL,
            notified character varying(255) NOT NULL,
            notified_at timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT vacation_notification_pkey PRIMARY KEY (on_vacation, notified),
            CONSTRAINT vacation_notification_on_vacation_fkey FOREIGN KEY (on_vacation)
                REFERENCES vacation (email) ON DELETE CASCADE
        )
    """),
    ("index", "domain_domain_active", "CREATE INDEX domain_domain_active ON domain (domain, active)"),
    ("index", "alias_address_active", "CREATE INDEX alias_address_active ON alias (address, active)"),
    ("index", "alias_domain_idx", "CREATE INDEX alias_domain_idx ON alias (domain)"),
    ("index", "alias_domain_active", "CREATE INDEX alias_domain_active ON alias_domain (alias_domain, active)"),
    ("index", "mailbox_username_active", "CREATE INDEX mailbox_username_active ON mailbox (username, active)"),
    ("index", "mailbox_domain_idx", "CREATE INDEX mailbox_domain_idx ON mailbox (domain)"),
    ("index", "log_domain_timestamp_idx", 'CREATE INDEX log_domain_timestamp_idx ON log (domain, "timestamp")'),
    ("index", "vacation_email_active", "CREATE INDEX vacation_email_active ON vacation (email, active)"),
    # Dovecot's dict quota writes usage with INSERTs: these triggers fold an
    # insert for an existing key into the row that is there (this module's
    # own functions, under postfixadmin's names).
    ("function", "merge_quota", """
        CREATE FUNCTION merge_quota() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE quota SET current = current + NEW.current
            WHERE username = NEW.username AND path = NEW.path;
            IF FOUND THEN
                RETURN NULL;
            END IF;
            RETURN NEW;
        END;
        $$
    """),
    ("function", "merge_quota2", """
        CREATE FUNCTION merge_quota2() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE quota2 SET bytes = bytes + NEW.bytes, messages = messages + NEW.messages
            WHERE username = NEW.username;
            IF FOUND THEN
                RETURN NULL;
            END IF;
            RETURN NEW;
        END;
        $$
    """),
    ("trigger", "mergequota",
     "CREATE TRIGGER mergequota BEFORE INSERT ON quota FOR EACH ROW EXECUTE FUNCTION merge_quota()"),
    ("trigger", "mergequota2",
     "CREATE TRIGGER mergequota2 BEFORE INSERT ON quota2 FOR EACH ROW EXECUTE FUNCTION merge_quota2()"),
)


def _object_exists(conn, kind, name):
    if kind == "function":
        return conn.execute("SELECT to_regprocedure(%s::text) AS oid", (f"{name}()",)).fetchone()["oid"] is not None
    if kind == "trigger":
        return conn.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", (name,)).fetchone() is not None
    return _table_exists(conn, name)  # tables and indexes are both relations


def _schema_version(conn):
    """postfixadmin's database version (config 'version'; 0 without that row, as
    postfixadmin reads it), or None without a config table."""
    if not _table_exists(conn, "config"):
        return None
    row = conn.execute("SELECT value FROM config WHERE name = 'version'").fetchone()
    try:
        return int(row["value"]) if row else 0
    except ValueError:
        raise CommandExecutionError(f"postfixadmin's config table holds a bad version: {row['value']!r}") from None


def _missing_objects(conn):
    """(kind, name, SQL) of the schema objects to create; none on a database
    postfixadmin already recorded as version SCHEMA_VERSION or newer."""
    version = _schema_version(conn)
    if version is None:
        return [obj for obj in _SCHEMA if not _object_exists(conn, obj[0], obj[1])]
    if version < SCHEMA_VERSION:
        raise CommandExecutionError(
            f"the postfixadmin database is at version {version}, older than {SCHEMA_VERSION} "
            f"(postfixadmin {POSTFIXADMIN_RELEASE}): upgrade it with postfixadmin's setup.php (upgrade.php) first; "
            "nothing was changed"
        )
    return []


def _schema_plan(conn, lookup_user):
    if lookup_user is not None and not _role_exists(conn, _text("lookup_user", lookup_user, 63)):
        raise SaltInvocationError(f"lookup role {lookup_user!r} does not exist")
    objects = _missing_objects(conn)
    created_tables = [name for kind, name, _ in objects if kind == "table"]
    grants = _missing_grants(conn, lookup_user, created_tables) if lookup_user else []
    return objects, grants


def _schema_report(objects, grants, lookup_user):
    return {
        "created": [f"{kind} {name}" for kind, name, _ in objects],
        "version": SCHEMA_VERSION if any(name == "config" for _, name, _ in objects) else None,
        "granted": [_grant_text(table, columns, lookup_user) for table, columns in grants],
    }


def schema_pending(lookup_user=None, database=None):
    """
    What :py:func:`schema_init` would do, without doing it: the schema
    objects it would create, the version it would record and the grants it
    would give ``lookup_user``. Raises CommandExecutionError on a database
    postfixadmin recorded as older than this module's version.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.schema_pending lookup_user=postfix
    """
    with _Transaction(database, read_only=True) as conn:
        return _schema_report(*_schema_plan(conn, lookup_user), lookup_user)


def schema_init(lookup_user=None, database=None):
    """
    Create postfixadmin's complete PostgreSQL schema of postfixadmin 3.3
    (every table, index and trigger its upgrade.php creates, database version
    1847 recorded in its ``config`` table the way upgrade.php records it), so
    postfixadmin's setup finds nothing to do; and let ``lookup_user`` (the
    role Postfix's lookup tables log in as; it must exist) read what the
    lookup tables need - mailbox passwords excluded.

    On a database without postfixadmin's version record, only missing
    objects are created (existing tables are left as they are). On a
    database postfixadmin recorded as version 1847 or newer, the schema is
    left alone (only grants are given); on an older one nothing is changed
    and CommandExecutionError says to upgrade it with postfixadmin first.
    All in one transaction. Returns what it did: ``{"created": ["table
    config", ..., "index ...", "trigger ..."], "version": 1847 or None,
    "granted": [grants]}``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.schema_init lookup_user=postfix
    """
    with _Transaction(database) as conn:
        objects, grants = _schema_plan(conn, lookup_user)
        for _, _, statement in objects:
            conn.execute(statement)
        if any(name == "config" for _, name, _ in objects):
            conn.execute("INSERT INTO config (name, value) VALUES ('version', %s)", (str(SCHEMA_VERSION),))
        for table, columns in grants:
            _grant(conn, table, columns, lookup_user)
        return _schema_report(objects, grants, lookup_user)


#: Not postfixadmin's: each mailbox's usage as Dovecot's quota_clone plugin copies
#: it (absolute values; postfixadmin's quota2 adds every write to the row), read
#: by the formula's quota check so quota-status is asked only near the quota.
QUOTA_USAGE_TABLE = """
    CREATE TABLE quota_usage (
        username character varying(255) NOT NULL,
        bytes bigint NOT NULL DEFAULT 0,
        messages bigint NOT NULL DEFAULT 0,
        CONSTRAINT quota_usage_pkey PRIMARY KEY (username)
    )
"""


def quota_usage_table(lookup_user=None, database=None, dry_run=False):
    """
    The formula's own table ``quota_usage`` (username, bytes, messages) in
    the postfixadmin database: Dovecot's quota_clone plugin writes each
    mailbox's usage there, and the quota check (Postfix's ``quota_check``
    lookup table) reads it so Dovecot's quota-status is asked only about
    mailboxes that are near their quota. Created where missing, and
    ``lookup_user`` (the lookup tables' role; it must exist) may read it.
    Returns what was done (``dry_run``: what would be), ``{}`` when nothing
    is to do: ``{"created": "table quota_usage", "granted": "SELECT ON
    quota_usage TO ROLE"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.quota_usage_table lookup_user=postfix dry_run=True
    """
    with _Transaction(database, read_only=dry_run) as conn:
        if lookup_user is not None and not _role_exists(conn, _text("lookup_user", lookup_user, 63)):
            raise SaltInvocationError(f"lookup role {lookup_user!r} does not exist")
        changes = {}
        missing = not _table_exists(conn, "quota_usage")
        if missing:
            changes["created"] = "table quota_usage"
        grants = []
        if lookup_user is not None:
            grants = _missing_grants(conn, lookup_user, ["quota_usage"] if missing else [], {"quota_usage": None})
        if grants:
            changes["granted"] = _grant_text("quota_usage", None, lookup_user)
        if not dry_run:
            if missing:
                conn.execute(QUOTA_USAGE_TABLE)
            if grants:
                _grant(conn, "quota_usage", None, lookup_user)
        return changes
