"""
Manage a postfixadmin database on PostgreSQL: schema, domains, mailboxes,
aliases, and the copy of a primary's users a backup MX needs.

Requires psycopg 3 in Salt's Python.

Connection settings come from the ``database`` argument of every function, a
dict with ``host``, ``port``, ``dbname``, ``user``, ``password`` and
``sslmode`` (all but ``dbname`` optional, libpq defaults apply), or else from
``postfixadmin:database`` in the minion config or pillar:

.. code-block:: yaml

    postfixadmin:
      database:
        host: 127.0.0.1
        port: 5432
        dbname: postfixadmin
        user: postfixadmin
        password: secret
        sslmode: prefer

The schema is postfixadmin's own (3.3, PostgreSQL flavour, database version
1847 recorded as its upgrade.php does), so this module and postfixadmin's web
UI and CLI work on the same database. Domain ``maxquota`` and ``quota`` are in
postfixadmin's "MB" (``$CONF['quota_multiplier']`` bytes, 1024000 by
default); mailbox ``quota`` is in bytes; a mailbox's ``full_name`` is
postfixadmin's ``mailbox.name`` column. The reading functions (``*_list``,
``*_get``) see a database without the schema yet as empty, so states can
predict their changes (test=True) before :py:func:`schema_init` has run.

Mailbox passwords are hashed in process (libcrypt) in the format of
postfixadmin's ``$CONF['encrypt']`` setting given as ``encrypt`` (or
``postfixadmin:encrypt`` in config/pillar), by default
``dovecot:SHA512-CRYPT``: ``{SHA512-CRYPT}$6$...``, which Dovecot and
postfixadmin (with encrypt ``dovecot:SHA512-CRYPT`` or
``php_crypt:SHA512::{SHA512-CRYPT}``) verify; with postfixadmin's default
``md5crypt`` choose ``md5crypt``. A password already hashed in a form
postfixadmin writes is stored as given. Plaintext passwords are never
stored, logged or returned, and no function returns a password hash.

Sections: validation, connection, rows, schema, domains, passwords,
mailboxes, aliases, backup MX copy, lookup tables.
"""

import base64
import ctypes
import ctypes.util
import datetime
import hmac
import re
import secrets

import salt.utils.args
from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    HAS_PSYCOPG = True
except ImportError:
    HAS_PSYCOPG = False

__virtualname__ = "postfixadmin"

MASK = "********"
MAX_QUOTA = 9223372036854774784
INT_MAX = 2147483647
BIGINT_MAX = 9223372036854775807
# Mailbox copies on a backup MX get this: crypt() never yields "*", so no
# password matches it.
LOCKED_PASSWORD = "{SHA512-CRYPT}*"
# postfixadmin keeps a pseudo domain "ALL" for its superadmins.
PSEUDO_DOMAIN = "ALL"

CONNECTION_KEYS = ("host", "port", "dbname", "user", "password", "sslmode")

_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART_RE = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

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
#: The tables of domains, mailboxes and aliases (what a backup copy needs)
_RECORD_TABLES = ("domain", "alias", "mailbox", "alias_domain")

# What Postfix's lookup tables read; the lookup role gets nothing else
# (in particular not mailbox.password).
_LOOKUP_COLUMNS = {
    "domain": None,
    "alias": None,
    "alias_domain": None,
    "mailbox": ("username", "maildir", "quota", "local_part", "domain", "active"),
}

_DOMAIN_COLUMNS = (
    "domain", "description", "aliases", "mailboxes", "maxquota", "quota", "transport", "backupmx", "active",
    "password_expiry", "created", "modified",
)
_MAILBOX_COLUMNS = (
    "username", "full_name", "maildir", "quota", "local_part", "domain", "active", "password_expiry",
    "created", "modified",
)
#: Days a new mailbox password is valid when its domain sets no
#: password_expiry (0): postfixadmin's own value when its password
#: expiration is off.
DEFAULT_PASSWORD_DAYS = 365
_ALIAS_COLUMNS = ("address", "goto", "domain", "active", "created", "modified")
# Fields stored in a column of another name: mailbox.name holds the owner's
# full name (``name`` is the address in the states).
_FIELD_COLUMNS = {"full_name": "name"}


def __virtual__():
    if not HAS_PSYCOPG:
        return (False, "psycopg 3 is not installed: install 'psycopg[binary]' into Salt's Python (salt-pip)")
    return __virtualname__


# --- validation -------------------------------------------------------------


def _text(field, value, max_length=255):
    if not isinstance(value, str) or len(value) > max_length or _CONTROL_RE.search(value):
        raise SaltInvocationError(
            f"{field} must be text of at most {max_length} characters without control characters: {value!r}"
        )
    return value


def _optional_text(field, value):
    return None if value is None else _text(field, value)


def _flag(field, value):
    if not isinstance(value, bool):
        raise SaltInvocationError(f"{field} must be true or false: {value!r}")
    return value


def _integer(field, value, low, high):
    if type(value) is not int or not low <= value <= high:
        raise SaltInvocationError(f"{field} must be an integer from {low} to {high}: {value!r}")
    return value


def _domain_name(value):
    if not isinstance(value, str) or len(value) > 253 or not _DOMAIN_RE.fullmatch(value.lower()):
        raise SaltInvocationError(f"invalid domain name: {value!r}")
    return value.lower()


def _address(value, catch_all=False):
    """user@domain (or @domain with catch_all), lower-cased; returns (address, local_part, domain)."""
    if not isinstance(value, str) or len(value) > 254 or value.count("@") != 1:
        raise SaltInvocationError(f"invalid address: {value!r}")
    local_part, domain = value.lower().split("@")
    valid_local = (catch_all and local_part == "") or (len(local_part) <= 64 and _LOCAL_PART_RE.fullmatch(local_part))
    if not valid_local:
        raise SaltInvocationError(f"invalid address: {value!r}")
    domain = _domain_name(domain)
    return f"{local_part}@{domain}", local_part, domain


def _goto(value):
    """A list of addresses (or one comma-separated string) -> list, lower-cased, without repeats."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise SaltInvocationError(f"goto must be a non-empty list of addresses: {value!r}")
    addresses = [_address(item.strip() if isinstance(item, str) else item)[0] for item in items]
    return list(dict.fromkeys(addresses))


def _password(value):
    if not isinstance(value, str) or not value or _CONTROL_RE.search(value):
        raise SaltInvocationError("password must be non-empty text without control characters")
    return value


_DOMAIN_FIELDS = {
    "description": _text,
    "aliases": lambda field, value: _integer(field, value, -1, INT_MAX),
    "mailboxes": lambda field, value: _integer(field, value, -1, INT_MAX),
    "maxquota": lambda field, value: _integer(field, value, -1, BIGINT_MAX),
    "quota": lambda field, value: _integer(field, value, -1, BIGINT_MAX),
    "transport": _optional_text,
    "backupmx": _flag,
    "active": _flag,
    "password_expiry": lambda field, value: _integer(field, value, 0, INT_MAX),
}
_MAILBOX_FIELDS = {
    "full_name": _text,
    "quota": lambda field, value: _integer(field, value, 0, MAX_QUOTA),
    "active": _flag,
}
_ALIAS_FIELDS = {
    "goto": lambda field, value: _goto(value),
    "active": _flag,
}
_FIELDS = {"domain": _DOMAIN_FIELDS, "mailbox": _MAILBOX_FIELDS, "alias": _ALIAS_FIELDS}


def _checked(kind, fields):
    checkers = _FIELDS[kind]
    unknown = sorted(set(fields) - set(checkers))
    if unknown:
        raise SaltInvocationError(f"unknown {kind} field(s) {', '.join(unknown)}; known: {', '.join(checkers)}")
    return {field: checkers[field](field, value) for field, value in fields.items()}


def validate(kind, **fields):
    """
    Check and normalise the fields of a ``domain``, ``mailbox`` or ``alias``
    the way the add/update functions do; return them normalised (addresses
    lower-cased, goto as a list without repeats). Raises SaltInvocationError
    naming the bad field and value.

    Domain fields: description, aliases, mailboxes, maxquota, quota,
    transport, backupmx, active, password_expiry. Mailbox fields: full_name, quota, active (the
    password is not a field). Alias fields: goto, active.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.validate mailbox quota=1073741824 active=True
    """
    if kind not in _FIELDS:
        raise SaltInvocationError(f"kind must be one of {', '.join(_FIELDS)}: {kind!r}")
    return _checked(kind, salt.utils.args.clean_kwargs(**fields))


# --- connection -------------------------------------------------------------


def _settings(database):
    settings = database if database is not None else __salt__["config.get"]("postfixadmin:database")
    if not isinstance(settings, dict) or not settings.get("dbname"):
        raise SaltInvocationError(
            "no database: pass database={...} or set postfixadmin:database (with at least dbname)"
        )
    unknown = sorted(set(settings) - set(CONNECTION_KEYS))
    if unknown:
        known = ", ".join(CONNECTION_KEYS)
        raise SaltInvocationError(f"unknown database setting(s) {', '.join(unknown)}; known: {known}")
    return {key: value for key, value in settings.items() if value is not None}


def _describe(settings):
    return f"{settings.get('user', '')}@{settings.get('host', '')}:{settings.get('port', '')}/{settings['dbname']}"


def _masked(message, settings):
    password = settings.get("password")
    return message.replace(str(password), MASK) if password else message


class _Transaction:
    """One connection, one transaction: committed on success, rolled back on any error."""

    def __init__(self, database, read_only=False):
        self.settings = _settings(database)
        self.read_only = read_only
        self.conn = None

    def __enter__(self):
        try:
            self.conn = psycopg.connect(**self.settings, connect_timeout=10, row_factory=dict_row)
        except psycopg.Error as exc:
            message = _masked(str(exc), self.settings)
            raise CommandExecutionError(
                f"cannot connect to postfixadmin database {_describe(self.settings)}: {message}"
            ) from None
        self.conn.read_only = self.read_only
        return self.conn

    def __exit__(self, exc_type, exc, traceback):
        conn, self.conn = self.conn, None
        try:
            conn.__exit__(exc_type, exc, traceback)
        except psycopg.Error as commit_error:
            exc = commit_error
        if isinstance(exc, psycopg.Error):
            raise CommandExecutionError(
                f"postfixadmin database {_describe(self.settings)}: {_masked(str(exc).strip(), self.settings)}"
            ) from None
        return False


# --- rows -------------------------------------------------------------------


def _plain(row):
    """Rows as Salt can serialise them: timestamps as ISO strings."""
    return {key: value.isoformat() if isinstance(value, datetime.datetime) else value for key, value in row.items()}


def _column(field):
    return sql.Identifier(_FIELD_COLUMNS.get(field, field))


def _selected(field):
    if field not in _FIELD_COLUMNS:
        return sql.Identifier(field)
    return sql.SQL("{} AS {}").format(_column(field), sql.Identifier(field))


def _select(conn, table, fields, where=None, params=()):
    """SELECT FIELDS FROM TABLE [WHERE ...]: WHERE is this module's own SQL text (values
    only ever as %s PARAMS) or a composed psycopg.sql object."""
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(_selected, fields)), sql.Identifier(table))
    if where:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(where) if isinstance(where, str) else where)
    return [_plain(row) for row in conn.execute(query, params).fetchall()]


def _key_is(key):
    return sql.SQL("{} = %s").format(sql.Identifier(key))


def _select_one(conn, table, columns, key, value):
    rows = _select(conn, table, columns, _key_is(key), (value,))
    return rows[0] if rows else None


def _table_exists(conn, table):
    return conn.execute("SELECT to_regclass(%s::text) AS oid", (table,)).fetchone()["oid"] is not None


def _read(database, table, columns, where, params=()):
    """Rows of one read-only query; none while the table does not exist (no schema yet: nothing is present)."""
    with _Transaction(database, read_only=True) as conn:
        return _select(conn, table, columns, where, params) if _table_exists(conn, table) else []


def _read_one(database, table, columns, key, value):
    rows = _read(database, table, columns, _key_is(key), (value,))
    return rows[0] if rows else None


def _insert(conn, table, row):
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(_column, row)),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
        ),
        tuple(row.values()),
    )


def _update(conn, table, key, value, changes):
    assignments = [sql.SQL("{} = %s").format(_column(field)) for field in changes]
    conn.execute(
        sql.SQL("UPDATE {} SET {}, modified = now() WHERE {} = %s").format(
            sql.Identifier(table), sql.SQL(", ").join(assignments), sql.Identifier(key)
        ),
        (*changes.values(), value),
    )


def _delete(conn, table, key, value):
    query = sql.SQL("DELETE FROM {} WHERE {} = %s").format(sql.Identifier(table), sql.Identifier(key))
    return conn.execute(query, (value,)).rowcount


def _differences(current, desired):
    return {
        field: {"old": current[field], "new": value}
        for field, value in desired.items()
        if current[field] != value
    }


def _require(row, what, name):
    if row is None:
        raise CommandExecutionError(f"{what} {name} does not exist")
    return row


def _refuse_existing(row, what, name):
    if row is not None:
        raise CommandExecutionError(f"{what} {name} already exists")


# --- schema -----------------------------------------------------------------


def _role_exists(conn, role):
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _object_exists(conn, kind, name):
    if kind == "function":
        return conn.execute("SELECT to_regprocedure(%s::text) AS oid", (f"{name}()",)).fetchone()["oid"] is not None
    if kind == "trigger":
        return conn.execute("SELECT 1 FROM pg_trigger WHERE tgname = %s", (name,)).fetchone() is not None
    return _table_exists(conn, name)  # tables and indexes are both relations


def _missing_tables(conn, tables=_RECORD_TABLES):
    return [table for table in tables if not _table_exists(conn, table)]


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


def _missing_grants(conn, role, missing_tables):
    """(table, columns or None) the role cannot read yet."""
    missing = []
    for table, columns in _LOOKUP_COLUMNS.items():
        if table in missing_tables:
            missing.append((table, columns))
        elif columns is None:
            query = "SELECT has_table_privilege(%s::text, %s::text, 'SELECT') AS ok"
            if not conn.execute(query, (role, table)).fetchone()["ok"]:
                missing.append((table, None))
        else:
            query = "SELECT has_column_privilege(%s::text, %s::text, %s::text, 'SELECT') AS ok"
            lacking = tuple(c for c in columns if not conn.execute(query, (role, table, c)).fetchone()["ok"])
            if lacking:
                missing.append((table, lacking))
    return missing


def _grant_text(table, columns, role):
    on = f"({', '.join(columns)}) ON {table}" if columns else f"ON {table}"
    return f"SELECT {on} TO {role}"


def _grant(conn, table, columns, role):
    on = sql.Identifier(table)
    if columns:
        on = sql.SQL("({}) ON {}").format(sql.SQL(", ").join(map(sql.Identifier, columns)), on)
    else:
        on = sql.SQL("ON {}").format(on)
    conn.execute(sql.SQL("GRANT SELECT {} TO {}").format(on, sql.Identifier(role)))


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


# --- domains ----------------------------------------------------------------


def domain_list(database=None):
    """
    All domains (postfixadmin's pseudo domain ``ALL`` left out), each a dict of
    domain, description, aliases, mailboxes, maxquota, quota, transport,
    backupmx, active, password_expiry, created, modified. A database without
    the postfixadmin schema yet has none.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.domain_list
    """
    return _read(database, "domain", _DOMAIN_COLUMNS, "domain <> %s ORDER BY domain", (PSEUDO_DOMAIN,))


def domain_get(domain, database=None):
    """
    One domain as a dict (see :py:func:`domain_list`), or None if absent.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.domain_get example.com
    """
    return _read_one(database, "domain", _DOMAIN_COLUMNS, "domain", _domain_name(domain))


def domain_add(
    domain,
    description="",
    aliases=0,
    mailboxes=0,
    maxquota=0,
    quota=0,
    transport=None,
    backupmx=False,
    active=True,
    password_expiry=0,
    database=None,
):
    """
    Add a domain; returns it. ``aliases``/``mailboxes`` are postfixadmin's
    limits (0 unlimited, -1 disabled). ``maxquota`` (per mailbox) and
    ``quota`` (whole domain) are in postfixadmin's units, as its web UI shows
    and stores them: "MB" of ``$CONF['quota_multiplier']`` bytes (1024000
    by default - not MiB), 0 unlimited; a mailbox's quota is in bytes.
    ``backupmx`` True makes this host a backup MX for the domain
    (relay_domains). ``password_expiry``: days a mailbox password set from
    now on stays valid (postfixadmin's password expiration; 0: no expiry).
    Fails if the domain exists.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.domain_add example.com description="Example" backupmx=True
    """
    domain = _domain_name(domain)
    fields = _checked("domain", {
        "description": description, "aliases": aliases, "mailboxes": mailboxes, "maxquota": maxquota,
        "quota": quota, "transport": transport, "backupmx": backupmx, "active": active,
        "password_expiry": password_expiry,
    })
    with _Transaction(database) as conn:
        _refuse_existing(_select_one(conn, "domain", ("domain",), "domain", domain), "domain", domain)
        _insert(conn, "domain", {"domain": domain, **fields})
        return _select_one(conn, "domain", _DOMAIN_COLUMNS, "domain", domain)


def domain_update(domain, database=None, **fields):
    """
    Change fields of a domain (description, aliases, mailboxes, maxquota,
    quota, transport, backupmx, active, password_expiry; see
    :py:func:`domain_add`). Returns
    ``{field: {"old": ..., "new": ...}}`` for what changed.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.domain_update example.com active=False
    """
    domain = _domain_name(domain)
    fields = validate("domain", **fields)
    with _Transaction(database) as conn:
        current = _require(_select_one(conn, "domain", _DOMAIN_COLUMNS, "domain", domain), "domain", domain)
        changes = _differences(current, fields)
        if changes:
            _update(conn, "domain", "domain", domain, {field: change["new"] for field, change in changes.items()})
        return changes


def _delete_domain_rows(conn, domain):
    for table in ("alias", "mailbox", "alias_domain"):
        _delete(conn, table, "domain" if table != "alias_domain" else "target_domain", domain)
    return _delete(conn, "domain", "domain", domain) > 0


def domain_delete(domain, database=None):
    """
    Delete a domain with its mailboxes, aliases and alias domains (the
    mailboxes' mail on disk is left alone). Returns True if it existed.
    If other postfixadmin tables (domain_admins, vacation, ...) still refer
    to the domain, PostgreSQL refuses and nothing is deleted.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.domain_delete example.com
    """
    domain = _domain_name(domain)
    with _Transaction(database) as conn:
        return _delete_domain_rows(conn, domain)


# --- passwords --------------------------------------------------------------
#
# Mailbox passwords are hashed in process with libcrypt (libxcrypt), in the
# format postfixadmin's $CONF['encrypt'] setting writes, so postfixadmin's
# login check and Dovecot both verify them and no doveadm is needed (on a
# fresh minion Dovecot is not installed yet when mailboxes are made).

#: Default hash format: what postfixadmin writes with encrypt =
#: 'dovecot:SHA512-CRYPT' (and 'php_crypt:SHA512::{SHA512-CRYPT}').
DEFAULT_ENCRYPT = "dovecot:SHA512-CRYPT"
#: crypt(3) method -> libxcrypt prefix
_CRYPT_PREFIXES = {"SHA512": "$6$", "SHA256": "$5$", "MD5": "$1$", "BLOWFISH": "$2y$"}
#: Dovecot crypt schemes (postfixadmin's dovecot:SCHEME) -> crypt(3) method
_DOVECOT_CRYPT_METHODS = {"SHA512-CRYPT": "SHA512", "SHA256-CRYPT": "SHA256", "BLF-CRYPT": "BLOWFISH",
                          "MD5-CRYPT": "MD5"}
#: Dovecot schemes whose value is a crypt(3) string: verified in process
_CRYPT_SCHEMES = ("SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT", "MD5", "CRYPT", "DES-CRYPT")
_SCHEME_RE = re.compile(r"\{([A-Z0-9.-]+)\}(\S+)")
_B64 = "[./0-9A-Za-z]"
#: crypt(3) strings postfixadmin writes without a {SCHEME} prefix (md5crypt,
#: php_crypt, system with a modern salt): md5crypt, sha256/sha512-crypt, bcrypt
_BARE_CRYPT_RE = re.compile(
    rf"\$1\${_B64}{{1,8}}\${_B64}{{22}}"
    rf"|\$5\$(?:rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{43}}"
    rf"|\$6\$(?:rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{86}}"
    rf"|\$2[abxy]\$\d\d\${_B64}{{53}}"
)
#: sizeof(struct crypt_data) in libxcrypt
_CRYPT_DATA_SIZE = 32768
_CRYPT_OUTPUT_SIZE = 192


def _libcrypt():
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt_rn.restype = ctypes.c_char_p
    libcrypt.crypt_rn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
    libcrypt.crypt_gensalt_rn.restype = ctypes.c_char_p
    libcrypt.crypt_gensalt_rn.argtypes = (
        ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
    )
    return libcrypt


def _crypt(password, setting):
    """crypt(3) (libxcrypt's reentrant crypt_rn), in process; None if it refuses SETTING."""
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = _libcrypt().crypt_rn(password.encode(), setting.encode(), data, _CRYPT_DATA_SIZE)
    return result.decode() if result and not result.startswith(b"*") else None


def _gensalt(method, rounds):
    """A crypt(3) setting for METHOD with a random salt (16 bytes from secrets)."""
    output = ctypes.create_string_buffer(_CRYPT_OUTPUT_SIZE)
    random = secrets.token_bytes(16)
    setting = _libcrypt().crypt_gensalt_rn(
        _CRYPT_PREFIXES[method].encode(), rounds or 0, random, len(random), output, _CRYPT_OUTPUT_SIZE
    )
    if not setting:
        raise SaltInvocationError(f"libcrypt refuses {method} with difficulty {rounds}")
    return setting.decode()


def _encrypt_format(encrypt):
    """postfixadmin's encrypt setting (None: postfixadmin:encrypt from the minion config or
    pillar, else DEFAULT_ENCRYPT) -> (crypt method, rounds or None, {SCHEME} prefix or '')."""
    if encrypt is None:
        # Imported without Salt's loader (tests seeding data) there is no __salt__.
        configured = __salt__["config.get"]("postfixadmin:encrypt") if "__salt__" in globals() else None
        encrypt = configured or DEFAULT_ENCRYPT
    problem = SaltInvocationError(
        f"unsupported encrypt {encrypt!r}: use one of postfixadmin's crypt settings: "
        "dovecot:SHA512-CRYPT (default), dovecot:SHA256-CRYPT, dovecot:BLF-CRYPT, dovecot:MD5-CRYPT, "
        "php_crypt[:SHA512|SHA256|MD5|BLOWFISH[:DIFFICULTY[:{PREFIX}]]], md5crypt"
    )
    if not isinstance(encrypt, str):
        raise problem
    if encrypt == "md5crypt":
        return "MD5", None, ""
    kind, _, rest = encrypt.partition(":")
    if kind == "dovecot" and rest in _DOVECOT_CRYPT_METHODS:
        return _DOVECOT_CRYPT_METHODS[rest], None, f"{{{rest}}}"
    if kind != "php_crypt":
        raise problem
    method, difficulty, prefix = (rest.split(":") + ["", "", ""])[:3] if rest else ("", "", "")
    method = method or "SHA512"
    if method not in _CRYPT_PREFIXES or (difficulty and not difficulty.isdigit()) or rest.count(":") > 2:
        raise problem
    if prefix and not re.fullmatch(r"\{[A-Z0-9.-]+\}", prefix):
        raise problem
    return method, int(difficulty) if difficulty else None, prefix


def _is_hashed(password):
    return bool(_SCHEME_RE.fullmatch(password) or _BARE_CRYPT_RE.fullmatch(password))


def _hash_password(password, encrypt=None):
    """A hash postfixadmin could have written ({SCHEME}... or a bare crypt string) as is;
    plaintext hashed in the ``encrypt`` format with a random salt."""
    password = _password(password)
    method, rounds, prefix = _encrypt_format(encrypt)
    if _is_hashed(password):
        return password
    hashed = _crypt(password, _gensalt(method, rounds))
    if hashed is None:
        raise CommandExecutionError(f"libcrypt could not hash the password with {method}")
    return prefix + hashed


def _doveadm_verifies(password, stored):
    """Schemes other than crypt's (e.g. postfixadmin's dovecot:ARGON2I) need
    ``doveadm pw -t``, which takes the stored hash on its command line."""
    result = __salt__["cmd.run_all"](
        ["doveadm", "pw", "-t", stored],
        python_shell=False,
        stdin=f"{password}\n",
        stdin_raw_newlines=True,
        output_loglevel="quiet",
        ignore_retcode=True,
    )
    return result["retcode"] == 0


def _password_matches(password, stored):
    """A hash must equal the stored one; plaintext is verified against it: crypt-family
    hashes ({SCHEME}-prefixed, {SHA512-CRYPT.B64} or bare) in process."""
    if _is_hashed(password):
        return hmac.compare_digest(password, stored)
    match = _SCHEME_RE.fullmatch(stored)
    if match is None:
        value = stored
    elif match.group(1) in _CRYPT_SCHEMES:
        value = match.group(2)
    elif match.group(1) == "SHA512-CRYPT.B64":
        try:
            value = base64.b64decode(match.group(2), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return _doveadm_verifies(password, stored)
    return hmac.compare_digest(_crypt(password, value) or "", value)


# --- mailboxes --------------------------------------------------------------


def mailbox_list(domain=None, database=None):
    """
    Mailboxes (of one domain, or all), each a dict of username, full_name
    (postfixadmin's ``name`` column), maildir, quota (bytes), local_part,
    domain, active, password_expiry (when the password expires), created,
    modified. Passwords are never returned. A database without the
    postfixadmin schema yet has none.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_list example.com
    """
    if domain is None:
        return _read(database, "mailbox", _MAILBOX_COLUMNS, "true ORDER BY username")
    return _read(database, "mailbox", _MAILBOX_COLUMNS, "domain = %s ORDER BY username", (_domain_name(domain),))


def mailbox_get(address, database=None):
    """
    One mailbox as a dict (see :py:func:`mailbox_list`), or None if absent.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_get user@example.com
    """
    return _read_one(database, "mailbox", _MAILBOX_COLUMNS, "username", _address(address)[0])


def _renew_password_expiry(conn, address):
    """password_expiry as postfixadmin sets it with a new password: now (to the
    minute) plus the domain's password_expiry days, or DEFAULT_PASSWORD_DAYS."""
    conn.execute(
        """UPDATE mailbox SET password_expiry = date_trunc('minute', now()) + make_interval(days => (
               SELECT CASE WHEN domain.password_expiry > 0 THEN domain.password_expiry ELSE %s END
               FROM domain WHERE domain.domain = mailbox.domain))
           WHERE username = %s""",
        (DEFAULT_PASSWORD_DAYS, address),
    )


def mailbox_add(address, password, full_name="", quota=0, active=True, encrypt=None, database=None):
    """
    Add a mailbox to an existing domain, with maildir ``domain/local_part/``
    and, like postfixadmin, its self-alias (address -> address).

    ``password`` is plaintext, stored hashed in the ``encrypt`` format (see
    below), or a hash in any form postfixadmin writes, stored as given:
    ``{SCHEME}...`` (Dovecot, php_crypt with a prefix, authlib,
    sha512.b64) or a bare crypt string (``$1$...`` md5crypt,
    ``$5$``/``$6$``, ``$2y$`` bcrypt). DES crypt and plain MD5 hex look
    like plaintext: pass them as ``{CRYPT}...`` / ``{PLAIN-MD5}...``.

    ``encrypt`` names postfixadmin's ``$CONF['encrypt']`` setting the hash
    must suit (None: ``postfixadmin:encrypt`` from config/pillar, else
    ``dovecot:SHA512-CRYPT``): ``dovecot:SHA512-CRYPT`` and
    ``php_crypt:SHA512::{SHA512-CRYPT}`` write ``{SHA512-CRYPT}$6$...``;
    also ``dovecot:SHA256-CRYPT``, ``dovecot:BLF-CRYPT``,
    ``dovecot:MD5-CRYPT``, ``php_crypt[:METHOD[:DIFFICULTY[:{PREFIX}]]]``
    and ``md5crypt`` (postfixadmin's default, bare ``$1$``). Hashing is done
    in process (libcrypt), Dovecot verifies all of them.

    ``full_name`` is the owner's name (postfixadmin's ``name`` column).
    ``quota`` in bytes, 0 unlimited, at most 9223372036854774784.
    ``password_expiry`` is set as postfixadmin sets it (now plus the
    domain's ``password_expiry`` days, or 365 days when that is 0). Returns
    the mailbox (without password).

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_add user@example.com password='{SHA512-CRYPT}$6$...' \\
            full_name='A. User' quota=1073741824
    """
    address, local_part, domain = _address(address)
    if "/" in local_part:
        raise SaltInvocationError(f"a mailbox address cannot contain '/' (it names the maildir): {address!r}")
    fields = _checked("mailbox", {"full_name": full_name, "quota": quota, "active": active})
    hashed = _hash_password(password, encrypt)
    with _Transaction(database) as conn:
        _require(_select_one(conn, "domain", ("domain",), "domain", domain), "domain", domain)
        _refuse_existing(_select_one(conn, "mailbox", ("username",), "username", address), "mailbox", address)
        _refuse_existing(_select_one(conn, "alias", ("address",), "address", address), "alias", address)
        _insert(conn, "mailbox", {
            "username": address, "password": hashed, "maildir": f"{domain}/{local_part}/",
            "local_part": local_part, "domain": domain, **fields,
        })
        _renew_password_expiry(conn, address)
        _insert(conn, "alias", {"address": address, "goto": address, "domain": domain, "active": fields["active"]})
        return _select_one(conn, "mailbox", _MAILBOX_COLUMNS, "username", address)


def mailbox_update(address, database=None, encrypt=None, **fields):
    """
    Change a mailbox: ``password`` (plaintext or a hash, hashed in the
    ``encrypt`` format, renewing ``password_expiry``: see
    :py:func:`mailbox_add`), ``full_name``, ``quota`` (bytes), ``active``
    (also (de)activates its self-alias).
    Returns ``{field: {"old": ..., "new": ...}}``; a new password shows as
    ``********``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_update user@example.com quota=2147483648 active=True
    """
    address = _address(address)[0]
    fields = salt.utils.args.clean_kwargs(**fields)
    password = fields.pop("password", None)
    fields = _checked("mailbox", fields)
    hashed = None if password is None else _hash_password(password, encrypt)
    with _Transaction(database) as conn:
        current = _require(_select_one(conn, "mailbox", _MAILBOX_COLUMNS, "username", address), "mailbox", address)
        changes = _differences(current, fields)
        values = {field: change["new"] for field, change in changes.items()}
        if hashed is not None:
            values["password"] = hashed
            changes["password"] = {"old": MASK, "new": MASK}
        if values:
            _update(conn, "mailbox", "username", address, values)
        if hashed is not None:
            _renew_password_expiry(conn, address)
        if "active" in changes:
            _update(conn, "alias", "address", address, {"active": fields["active"]})
        return changes


def mailbox_check_password(address, password, database=None):
    """
    True if ``password`` is the mailbox's password: plaintext is verified
    against the stored hash (in process with libcrypt for every crypt form,
    ``{SCHEME}``-prefixed, ``{SHA512-CRYPT.B64}`` or bare; other schemes,
    such as ARGON2, with ``doveadm pw -t``); a hash (see
    :py:func:`mailbox_add`) must equal the stored one.
    False if the mailbox does not exist.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_check_password user@example.com password='{SHA512-CRYPT}$6$...'
    """
    address = _address(address)[0]
    password = _password(password)
    row = _read_one(database, "mailbox", ("password",), "username", address)
    return row is not None and _password_matches(password, row["password"])


def mailbox_delete(address, database=None):
    """
    Delete a mailbox and, like postfixadmin, the alias of the same address.
    Its mail on disk is left alone. Returns True if it existed.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.mailbox_delete user@example.com
    """
    address = _address(address)[0]
    with _Transaction(database) as conn:
        existed = _delete(conn, "mailbox", "username", address) > 0
        if existed:
            _delete(conn, "alias", "address", address)
        return existed


# --- aliases ----------------------------------------------------------------


def _alias_row(row):
    return None if row is None else {**row, "goto": row["goto"].split(",")}


def alias_list(domain=None, database=None):
    """
    Aliases (of one domain, or all), each a dict of address, goto (a list),
    domain, active, created, modified. Mailboxes' self-aliases are included.
    A database without the postfixadmin schema yet has none.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.alias_list example.com
    """
    if domain is None:
        rows = _read(database, "alias", _ALIAS_COLUMNS, "true ORDER BY address")
    else:
        rows = _read(database, "alias", _ALIAS_COLUMNS, "domain = %s ORDER BY address", (_domain_name(domain),))
    return [_alias_row(row) for row in rows]


def alias_get(address, database=None):
    """
    One alias as a dict (see :py:func:`alias_list`), or None if absent.
    ``@example.com`` is the domain's catch-all.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.alias_get info@example.com
    """
    address = _address(address, catch_all=True)[0]
    return _alias_row(_read_one(database, "alias", _ALIAS_COLUMNS, "address", address))


def alias_add(address, goto, active=True, database=None):
    """
    Add an alias of an existing domain: ``address`` is ``user@domain`` or
    ``@domain`` (catch-all); ``goto`` a list of addresses (or one
    comma-separated string), stored comma-separated. Returns the alias.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.alias_add info@example.com goto='[alice@example.com, bob@example.org]'
    """
    address, _, domain = _address(address, catch_all=True)
    fields = _checked("alias", {"goto": goto, "active": active})
    with _Transaction(database) as conn:
        _require(_select_one(conn, "domain", ("domain",), "domain", domain), "domain", domain)
        _refuse_existing(_select_one(conn, "alias", ("address",), "address", address), "alias", address)
        _insert(conn, "alias", {"address": address, "goto": ",".join(fields["goto"]), "domain": domain,
                                "active": fields["active"]})
        return _alias_row(_select_one(conn, "alias", _ALIAS_COLUMNS, "address", address))


def alias_update(address, database=None, **fields):
    """
    Change an alias: ``goto`` (list of addresses) and/or ``active``. Returns
    ``{field: {"old": ..., "new": ...}}``; goto compares as a set of addresses.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.alias_update info@example.com goto='[carol@example.com]'
    """
    address = _address(address, catch_all=True)[0]
    fields = validate("alias", **fields)
    with _Transaction(database) as conn:
        current = _require(_alias_row(_select_one(conn, "alias", _ALIAS_COLUMNS, "address", address)), "alias", address)
        changes = {
            field: {"old": current[field], "new": value}
            for field, value in fields.items()
            if (set(current[field]) != set(value) if field == "goto" else current[field] != value)
        }
        if changes:
            values = {field: change["new"] for field, change in changes.items()}
            if "goto" in values:
                values["goto"] = ",".join(values["goto"])
            _update(conn, "alias", "address", address, values)
        return changes


def alias_delete(address, database=None):
    """
    Delete an alias. A mailbox's self-alias is refused: delete the mailbox.
    Returns True if it existed.

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.alias_delete info@example.com
    """
    address = _address(address, catch_all=True)[0]
    with _Transaction(database) as conn:
        if _select_one(conn, "mailbox", ("username",), "username", address) is not None:
            raise CommandExecutionError(f"{address} is a mailbox: delete the mailbox instead")
        return _delete(conn, "alias", "address", address) > 0


# --- backup MX --------------------------------------------------------------
#
# The backup MX's copy of the primary's users (sync_backup), self-contained:
# it uses only the rows helpers above, so another way of keeping the copy
# (PostgreSQL logical replication) can sit beside it as its own section.

# What a backup MX copies besides domains: table -> (plural, key column, copied columns).
_SYNCED = {
    "alias": ("aliases", "address", ("goto", "domain")),
    "mailbox": ("mailboxes", "username", ("full_name", "maildir", "quota", "local_part", "domain")),
}


def _synced_rows(conn, where, domains, extra_columns=()):
    rows = {}
    for table, (_, key, columns) in _SYNCED.items():
        selected = _select(conn, table, (key, *columns, *extra_columns), where, (domains,))
        rows[table] = {row.pop(key): row for row in selected}
    return rows


def _primary_data(conn):
    where = "active AND NOT backupmx AND domain <> %s"
    domains = {
        row.pop("domain"): row
        for row in _select(conn, "domain", ("domain", "description"), where, (PSEUDO_DOMAIN,))
    }
    return domains, _synced_rows(conn, "active AND domain = ANY(%s::text[])", list(domains))


def _backup_data(conn):
    columns = ("domain", "description", "backupmx", "active")
    domains = {row.pop("domain"): row for row in _select(conn, "domain", columns, "domain <> %s", (PSEUDO_DOMAIN,))}
    local = {name for name, row in domains.items() if not row.pop("backupmx")}
    backup = {name: row for name, row in domains.items() if name not in local}
    return local, backup, _synced_rows(conn, "domain = ANY(%s::text[])", list(backup), ("active",))


def _plan(wanted, present):
    """Rows wanted (always active) vs rows present -> added, updated, removed keys."""
    return {
        "added": sorted(set(wanted) - set(present)),
        "updated": sorted(key for key in set(wanted) & set(present) if present[key] != {**wanted[key], "active": True}),
        "removed": sorted(set(present) - set(wanted)),
    }


def _apply(conn, table, key, plan, wanted, extra=None):
    for name in plan["removed"]:
        _delete(conn, table, key, name)
    for name in plan["updated"]:
        _update(conn, table, key, name, {**wanted[name], "active": True})
    for name in plan["added"]:
        _insert(conn, table, {key: name, **wanted[name], **(extra or {}), "active": True})


def _require_schema(conn, which):
    missing = _missing_tables(conn)
    if missing:
        raise CommandExecutionError(
            f"the {which} database has no postfixadmin schema (missing tables: {', '.join(missing)}): "
            "run schema_init on it first"
        )


def _sync_plan(conn, wanted_domains, wanted_rows):
    """What syncing changes on the target; a target without the schema yet holds nothing."""
    if _missing_tables(conn):
        local, present_domains, present_rows = set(), {}, {table: {} for table in _SYNCED}
    else:
        local, present_domains, present_rows = _backup_data(conn)
    conflicts = sorted(local & set(wanted_domains))
    if conflicts:
        raise CommandExecutionError(
            f"domain(s) {', '.join(conflicts)} are local domains (backupmx false) on the target"
        )
    changes = {"domains": _plan(wanted_domains, present_domains)}
    for table, (plural, _, _) in _SYNCED.items():
        changes[plural] = _plan(wanted_rows[table], present_rows[table])
    return changes


def _sync_apply(conn, changes, wanted_domains, wanted_rows):
    # New domains first (aliases and mailboxes refer to them); gone ones last, with all that refers to them.
    _apply(conn, "domain", "domain", {**changes["domains"], "removed": []}, wanted_domains, {"backupmx": True})
    _apply(conn, "alias", "address", changes["aliases"], wanted_rows["alias"])
    _apply(conn, "mailbox", "username", changes["mailboxes"], wanted_rows["mailbox"], {"password": LOCKED_PASSWORD})
    for name in changes["domains"]["removed"]:
        _delete_domain_rows(conn, name)


def sync_backup(source, target=None, dry_run=False):
    """
    Make a backup MX's database (``target``; None: this minion's
    ``postfixadmin:database``) know the primary's (``source``) users: every
    active primary domain is on the target with backupmx true and active,
    with the primary's active aliases and mailboxes (mailbox copies get a
    password nothing matches: the backup authenticates no one). Backup
    domains, aliases and mailboxes the primary no longer has (or no longer
    has active) are deleted from the target; the target's own local domains
    (backupmx false) are never touched, and a primary domain that is local on
    the target is refused. All in one transaction on the target; a second
    run changes nothing. ``dry_run`` True computes the same answer and
    writes nothing (a target without the postfixadmin schema yet counts as
    empty; without ``dry_run`` it is refused, as is a source without it).
    Returns ``{"domains"|"aliases"|"mailboxes": {"added": [...],
    "updated": [...], "removed": [...]}}``.

    CLI Example:

    .. code-block:: bash

        salt backup-mx postfixadmin.sync_backup \\
            source='{host: db1.example.com, dbname: postfixadmin, user: sync, password: secret}'
    """
    with _Transaction(source, read_only=True) as conn:
        _require_schema(conn, "source")
        wanted_domains, wanted_rows = _primary_data(conn)
    with _Transaction(target, read_only=dry_run) as conn:
        if not dry_run:
            _require_schema(conn, "target")
        changes = _sync_plan(conn, wanted_domains, wanted_rows)
        if not dry_run:
            _sync_apply(conn, changes, wanted_domains, wanted_rows)
        return changes


# --- lookup tables ----------------------------------------------------------


def lookup(table, key, config_dir=None):
    """
    Look ``key`` up in a pgsql_table(5) file with ``postmap -q`` and return
    the result, or None if not found. Any warning or error from Postfix
    (connection, query, file) raises CommandExecutionError with Postfix's
    message. ``config_dir`` is Postfix's configuration directory (None:
    Postfix's default).

    CLI Example:

    .. code-block:: bash

        salt '*' postfixadmin.lookup /etc/postfix/pgsql/relay_domains.cf example.com
    """
    config = ["-c", str(config_dir)] if config_dir else []
    result = __salt__["cmd.run_all"](
        ["postmap", *config, "-q", key, f"pgsql:{table}"], python_shell=False, ignore_retcode=True
    )
    problem = result["stderr"].strip()
    if problem or result["retcode"] not in (0, 1):
        raise CommandExecutionError(problem or f"postmap -q failed with exit status {result['retcode']}")
    return result["stdout"].strip() if result["retcode"] == 0 else None
