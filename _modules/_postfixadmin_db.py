"""
The database layer the ``postfixadmin*`` execution modules share (a plain
Python module, not a Salt module): connection settings and transactions,
row helpers, and the catalog checks schema and replication both make
(input validation is ``_postfixadmin_fields.py``). Functions here take a
connection dict or an open connection.
"""

import datetime

import salt.loader.context
from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import psycopg
    import psycopg.conninfo
    from psycopg import sql
    from psycopg.rows import dict_row

    HAS_PSYCOPG = True
except ImportError:
    HAS_PSYCOPG = False

# __salt__ of the postfixadmin.* call running (what salt.loader.dunder does for
# __opts__); None when imported without Salt's loader.
__salt__ = salt.loader.context.LoaderContext().named_context("__salt__")


def available(virtualname):
    """What a postfixadmin* module's __virtual__ returns."""
    if not HAS_PSYCOPG:
        return (False, "psycopg 3 is not installed: install 'psycopg[binary]' into Salt's Python (salt-pip)")
    return virtualname


MASK = "********"
# Mailbox copies on a backup MX get this: crypt() never yields "*", so no
# password matches it.
LOCKED_PASSWORD = "{SHA512-CRYPT}*"
# postfixadmin keeps a pseudo domain "ALL" for its superadmins.
PSEUDO_DOMAIN = "ALL"

CONNECTION_KEYS = ("host", "port", "dbname", "user", "password", "sslmode")



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


# --- connection -----------------------------------------------------------


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


# --- rows -----------------------------------------------------------------


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


# --- catalog: roles, tables, grants ---------------------------------------


def _role_exists(conn, role):
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _missing_tables(conn, tables=_RECORD_TABLES):
    return [table for table in tables if not _table_exists(conn, table)]


def _missing_grants(conn, role, missing_tables, wanted=None):
    """(table, columns or None) of WANTED (default: the lookup tables' columns) the role cannot read yet."""
    missing = []
    for table, columns in (wanted or _LOOKUP_COLUMNS).items():
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


def _delete_domain_rows(conn, domain):
    for table in ("alias", "mailbox", "alias_domain"):
        _delete(conn, table, "domain" if table != "alias_domain" else "target_domain", domain)
    return _delete(conn, "domain", "domain", domain) > 0
