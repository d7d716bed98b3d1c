"""
A backup MX's copy of the primary's users, part of ``postfixadmin.*`` (see
``postfixadmin.py`` for the connection settings).

Two ways, each self-contained: :py:func:`sync_backup` copies the rows once
(what a state run or a schedule calls), and PostgreSQL's own logical
replication keeps the copy continuously: the primary's database publishes
the relay tables (mailbox: its address columns only, so no password hash
leaves the primary), the backup's database subscribes, and a trigger that
fires only for replicated rows (ENABLE REPLICA) marks the copied domains
backupmx and locks the copied mailboxes' passwords. The roles, grants,
database and server settings both ends need are here too; the subscription
and roles with REPLICATION need a superuser's connection.
"""

import base64
import hashlib
import hmac
import importlib
import re
import time

from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import psycopg
    import psycopg.conninfo
    from psycopg import sql
    from psycopg.rows import dict_row

except ImportError:
    pass  # postfixadmin.* is then unavailable (_postfixadmin_db.available)

# Shared with the other postfixadmin* modules. Not Salt modules themselves (the loader
# skips names starting with "_"), so reloaded here: code saltutil.sync_modules brings
# then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postfixadmin_fields"))
importlib.reload(importlib.import_module("_postfixadmin_db"))
from _postfixadmin_db import (  # noqa: E402
    CONNECTION_KEYS,
    LOCKED_PASSWORD,
    MASK,
    PSEUDO_DOMAIN,
    _LOOKUP_COLUMNS,
    _Transaction,
    _delete,
    _delete_domain_rows,
    _describe,
    _grant,
    _grant_text,
    _insert,
    _masked,
    _missing_grants,
    _missing_tables,
    _role_exists,
    _select,
    _settings,
    _update,
    available,
)
from _postfixadmin_fields import (  # noqa: E402
    _flag,
    _password,
    _text,
)

__virtualname__ = "postfixadmin"


def __virtual__():
    return available(__virtualname__)


# --- backup MX copy (sync_backup) -----------------------------------------


# What a backup MX copies besides domains: table -> (plural, key column,
# copied columns, the columns naming domains: every one must be a copied domain).
_SYNCED = {
    "alias": ("aliases", "address", ("goto", "domain"), ("domain",)),
    "mailbox": ("mailboxes", "username", ("full_name", "maildir", "quota", "local_part", "domain"), ("domain",)),
    "alias_domain": ("alias_domains", "alias_domain", ("target_domain",), ("alias_domain", "target_domain")),
}


def _synced_rows(conn, active_only, domains, extra_columns=()):
    rows = {}
    for table, (_, key, columns, domain_columns) in _SYNCED.items():
        where = sql.SQL(" AND ").join(
            [sql.SQL("active")] * active_only
            + [sql.SQL("{} = ANY(%s::text[])").format(sql.Identifier(column)) for column in domain_columns]
        )
        selected = _select(conn, table, (key, *columns, *extra_columns), where, (domains,) * len(domain_columns))
        rows[table] = {row.pop(key): row for row in selected}
    return rows


def _primary_data(conn):
    where = "active AND NOT backupmx AND domain <> %s"
    domains = {
        row.pop("domain"): row
        for row in _select(conn, "domain", ("domain", "description"), where, (PSEUDO_DOMAIN,))
    }
    return domains, _synced_rows(conn, True, list(domains))


def _backup_data(conn):
    columns = ("domain", "description", "backupmx", "active")
    domains = {row.pop("domain"): row for row in _select(conn, "domain", columns, "domain <> %s", (PSEUDO_DOMAIN,))}
    local = {name for name, row in domains.items() if not row.pop("backupmx")}
    backup = {name: row for name, row in domains.items() if name not in local}
    return local, backup, _synced_rows(conn, False, list(backup), ("active",))


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
    for table, (plural, _, _, _) in _SYNCED.items():
        changes[plural] = _plan(wanted_rows[table], present_rows[table])
    return changes


def _sync_apply(conn, changes, wanted_domains, wanted_rows):
    # New domains first (aliases, mailboxes and alias domains refer to them); gone ones last, with all that
    # refers to them.
    _apply(conn, "domain", "domain", {**changes["domains"], "removed": []}, wanted_domains, {"backupmx": True})
    _apply(conn, "alias", "address", changes["aliases"], wanted_rows["alias"])
    _apply(conn, "mailbox", "username", changes["mailboxes"], wanted_rows["mailbox"], {"password": LOCKED_PASSWORD})
    _apply(conn, "alias_domain", "alias_domain", changes["alias_domains"], wanted_rows["alias_domain"])
    for name in changes["domains"]["removed"]:
        _delete_domain_rows(conn, name)


def sync_backup(source, target=None, dry_run=False, allow_empty=False):
    """
    Make a backup MX's database (``target``; None: this minion's
    ``postfixadmin:database``) know the primary's (``source``) users: every
    active primary domain is on the target with backupmx true and active,
    with the primary's active aliases, mailboxes and alias domains (mailbox
    copies get a password nothing matches: the backup authenticates no
    one). Backup domains, aliases, mailboxes and alias domains the primary
    no longer has (or no longer has active) are deleted from the target;
    the target's own local domains (backupmx false) are never touched, and
    a primary domain that is local on the target is refused. All in one
    transaction on the target; a second run changes nothing. ``dry_run``
    True computes the same answer and writes nothing (a target without the
    postfixadmin schema yet counts as empty; without ``dry_run`` it is
    refused). A source without the schema, or without any active domain
    (a primary not set up yet), is refused, dry run or not, so a backup
    never copies an empty set over its copy; ``allow_empty`` True accepts
    a primary without domains (and empties the copy). Returns
    ``{"domains"|"aliases"|"mailboxes"|"alias_domains": {"added": [...],
    "updated": [...], "removed": [...]}}``.

    CLI Example:

    .. code-block:: bash

        salt backup-mx postfixadmin.sync_backup \\
            source='{host: db1.example.com, dbname: postfixadmin, user: sync, password: secret}'
    """
    with _Transaction(source, read_only=True) as conn:
        _require_schema(conn, "source")
        wanted_domains, wanted_rows = _primary_data(conn)
    if not wanted_domains and not allow_empty:
        raise CommandExecutionError(
            f"the source database {_describe(_settings(source))} holds no active domain yet: set up the primary "
            "first (nothing was copied)"
        )
    with _Transaction(target, read_only=dry_run) as conn:
        if not dry_run:
            _require_schema(conn, "target")
        changes = _sync_plan(conn, wanted_domains, wanted_rows)
        if not dry_run:
            _sync_apply(conn, changes, wanted_domains, wanted_rows)
        return changes


# --- logical replication --------------------------------------------------


#: What a primary publishes (and its replication role may read): table ->
#: columns (None: all). A mailbox copy gets its other columns' defaults.
_PUBLISHED = {
    "domain": None,
    "alias": None,
    "alias_domain": None,
    "mailbox": ("username", "local_part", "domain", "active", "created", "modified"),
}
#: What Dovecot's password and user queries read (postfix/dovecot).
_DOVECOT_COLUMNS = {
    "domain": ("domain", "active"),
    "mailbox": ("username", "password", "quota", "local_part", "domain", "active"),
}
#: Named sets of SELECT grants role_grants_present gives.
GRANT_SETS = {"lookup": _LOOKUP_COLUMNS, "replication": _PUBLISHED, "dovecot": _DOVECOT_COLUMNS}
_COPY_FUNCTION = "postfixadmin_backup_copy"
_COPY_TRIGGERS = {"domain": "postfixadmin_backup_domain", "mailbox": "postfixadmin_backup_mailbox"}
_COPY_FUNCTION_SQL = f"""
    CREATE OR REPLACE FUNCTION {_COPY_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'domain' THEN
            NEW.backupmx := true;
        ELSIF TG_OP = 'INSERT' THEN
            NEW.password := '{LOCKED_PASSWORD}';
        END IF;
        RETURN NEW;
    END;
    $$
"""
_IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class _Session:
    """One autocommit connection (CREATE SUBSCRIPTION runs outside a transaction block); errors masked."""

    def __init__(self, database, *others, what="postfixadmin database"):
        self.settings = _settings(database)
        self.others = [_settings(other) for other in others]
        self.what = what
        self.conn = None

    def _message(self, exc):
        message = _masked(str(exc).strip(), self.settings)
        for other in self.others:
            message = _masked(message, other)
        return message

    def _error(self, exc):
        return CommandExecutionError(f"{self.what} {_describe(self.settings)}: {self._message(exc)}")

    def __enter__(self):
        try:
            self.conn = psycopg.connect(**self.settings, connect_timeout=10, row_factory=dict_row, autocommit=True)
        except psycopg.Error as exc:
            raise CommandExecutionError(
                f"cannot connect to {self.what} {_describe(self.settings)}, nothing was changed "
                f"(not running yet?): {self._message(exc)}"
            ) from None
        return self.conn

    def __exit__(self, exc_type, exc, traceback):
        conn, self.conn = self.conn, None
        conn.close()
        if isinstance(exc, psycopg.Error):
            raise self._error(exc) from None
        return False


def _identifier(field, value):
    if not isinstance(value, str) or not _IDENTIFIER_RE.fullmatch(value):
        raise SaltInvocationError(f"{field} must be a lower-case SQL name (a-z, 0-9, _; at most 63): {value!r}")
    return value


def _table_list(tables):
    return sql.SQL(", ").join(
        sql.SQL("{} ({})").format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        if columns else sql.Identifier(table)
        for table, columns in tables.items()
    )


def _published(conn, name):
    """table -> set of published columns, or None without the publication."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone() is None:
        return None
    rows = conn.execute(
        "SELECT tablename, attnames FROM pg_publication_tables WHERE pubname = %s AND schemaname = 'public'", (name,)
    ).fetchall()
    return {row["tablename"]: set(row["attnames"]) for row in rows}


def _wanted_publication(conn):
    wanted = {}
    for table, columns in _PUBLISHED.items():
        if columns is None:
            query = "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
            columns = [row["attname"] for row in conn.execute(query, (table,)).fetchall()]
        wanted[table] = set(columns)
    return wanted


def publication_present(name="postfixadmin_relay", database=None, dry_run=False):
    """
    The primary's database (``database``: its owner's or a superuser's
    connection) publishes what a backup MX needs under publication
    ``name``: the tables domain, alias and alias_domain, and of mailbox only
    username, local_part, domain, active, created and modified (a column
    list: no password hash leaves the primary). Created, or its table list
    set, when it differs. The database needs ``wal_level = logical``
    (server_settings_present) for subscribers to connect. Refused on a
    database without the postfixadmin schema. Returns the changes
    (``{"publication": {"old": {table: [columns]} or None, "new": ...}}``,
    empty when it is as wanted); ``dry_run`` True writes nothing.

    CLI Example:

    .. code-block:: bash

        salt mx1 postfixadmin.publication_present postfixadmin_relay
    """
    name = _identifier("name", name)
    with _Session(database) as conn:
        _require_schema(conn, "primary")
        current, wanted = _published(conn, name), _wanted_publication(conn)
        if current == wanted:
            return {}

        def shown(tables):
            return None if tables is None else {table: sorted(columns) for table, columns in tables.items()}

        changes = {"publication": {"old": shown(current), "new": shown(wanted)}}
        if dry_run:
            return changes
        verb = "CREATE PUBLICATION {} FOR TABLE {}" if current is None else "ALTER PUBLICATION {} SET TABLE {}"
        conn.execute(sql.SQL(verb).format(sql.Identifier(name), _table_list(_PUBLISHED)))
        if _published(conn, name) != wanted:
            raise CommandExecutionError(f"publication {name} does not publish what was set")
        return changes


def publication_absent(name="postfixadmin_relay", database=None, dry_run=False):
    """
    No publication ``name`` in the primary's database. Returns
    ``{"publication": {"old": name, "new": None}}`` or ``{}``.

    CLI Example:

    .. code-block:: bash

        salt mx1 postfixadmin.publication_absent postfixadmin_relay
    """
    name = _identifier("name", name)
    with _Session(database) as conn:
        if _published(conn, name) is None:
            return {}
        if not dry_run:
            conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))
        return {"publication": {"old": name, "new": None}}


def _scram_matches(password, verifier):
    """Does PASSWORD match a SCRAM-SHA-256 verifier as PostgreSQL stores it (pg_authid.rolpassword)?"""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier or "")
    if not match:
        return False
    iterations, salt, stored_key, server_key = match.groups()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key)) and (
        hmac.compare_digest(hmac.new(salted, b"Server Key", "sha256").digest(), base64.b64decode(server_key))
    )


def _scram_verifier(conn, name, password):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for PASSWORD, made here (by libpq), so
    the password itself never reaches the server."""
    return conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()


def _statements_kept_out_of_the_server_log(conn):
    """Whatever the server logs (statements, slow or sampled ones, failing ones), not
    the statements CONN sends next in this session: they carry a password."""
    for setting in ("log_min_error_statement = panic", "log_statement = 'none'", "log_min_duration_statement = -1",
                    "log_min_duration_sample = -1", "log_transaction_sample_rate = 0"):
        conn.execute(f"SET {setting}")


def role_present(name, password=None, replication=False, login=True, database=None, dry_run=False):
    """
    A PostgreSQL role ``name`` with LOGIN (``login``), REPLICATION
    (``replication``: what a backup's subscription logs in as) and, when
    given, the password ``password`` (stored as SCRAM-SHA-256; a stored one
    it matches is kept). ``database`` must be a superuser's connection
    (REPLICATION and pg_authid need one). The password is never returned:
    a change shows as ``********``. Returns ``{attribute: {"old", "new"}}``
    (``role`` when it is created), empty when it is as wanted.

    CLI Example:

    .. code-block:: bash

        salt db1 postfixadmin.role_present postfixadmin_sync password=secret replication=True
    """
    name = _text("name", name, 63)
    if password is not None:
        _password(password)
    with _Session(database) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolreplication, rolpassword FROM pg_authid WHERE rolname = %s", (name,)
        ).fetchone()
        wanted = {"login": _flag("login", login), "replication": _flag("replication", replication)}
        if row is None:
            changes = {"role": {"old": None, "new": name}, **_added_changes_of(wanted)}
        else:
            current = {"login": row["rolcanlogin"], "replication": row["rolreplication"]}
            changes = {key: {"old": current[key], "new": value} for key, value in wanted.items() if current[key] != value}
        password_changes = password is not None and (row is None or not _scram_matches(password, row["rolpassword"]))
        if password_changes:
            changes["password"] = {"old": None if row is None else MASK, "new": MASK}
        if not changes or dry_run:
            return changes
        options = sql.SQL(" ").join(
            [sql.SQL("LOGIN" if login else "NOLOGIN"), sql.SQL("REPLICATION" if replication else "NOREPLICATION")]
            + ([sql.SQL("PASSWORD {}").format(sql.Literal(_scram_verifier(conn, name, password)))]
               if password_changes else [])
        )
        verb = "CREATE ROLE {} {}" if row is None else "ALTER ROLE {} {}"
        _statements_kept_out_of_the_server_log(conn)  # the verifier, though not the password, is in the statement
        try:
            conn.execute(sql.SQL(verb).format(sql.Identifier(name), options))
        except psycopg.Error as exc:
            raise CommandExecutionError(f"role {name}: {str(exc).strip().replace(password or MASK, MASK)}") from None
        return changes


def _added_changes_of(fields):
    return {field: {"old": None, "new": value} for field, value in fields.items()}


def role_grants_present(role, grants="replication", database=None, dry_run=False):
    """
    Role ``role`` may SELECT what the grant set ``grants`` names, nothing
    more is given: ``lookup`` (Postfix's lookup tables: no mailbox
    password), ``replication`` (what publication_present publishes: a
    backup's subscription copies it with this role), ``dovecot`` (Dovecot's
    password and user queries). ``database``: the tables' owner's or a
    superuser's connection. Refused on a database without the postfixadmin
    schema. Returns ``{"granted": [grants given]}`` or ``{}``.

    CLI Example:

    .. code-block:: bash

        salt db1 postfixadmin.role_grants_present postfixadmin_sync grants=replication
    """
    if grants not in GRANT_SETS:
        raise SaltInvocationError(f"grants must be one of {', '.join(GRANT_SETS)}: {grants!r}")
    with _Session(database) as conn:
        unprepared = _missing_tables(conn, tuple(GRANT_SETS[grants])) or not _role_exists(conn, role)
        if unprepared and not dry_run:
            _require_schema(conn, "postfixadmin")
            raise CommandExecutionError(f"role {role} does not exist")
        # A dry run before the schema or the role exists (test=True on a bare server) predicts every grant.
        missing = list(GRANT_SETS[grants].items()) if unprepared else _missing_grants(conn, role, [], GRANT_SETS[grants])
        if missing and not dry_run:
            for table, columns in missing:
                _grant(conn, table, columns, role)
        return {"granted": [_grant_text(table, columns, role) for table, columns in missing]} if missing else {}


def _copy_trigger_missing(conn):
    """The backup-copy triggers (tables) not yet in place and enabled for replicated rows only."""
    missing = []
    for table, trigger in _COPY_TRIGGERS.items():
        row = conn.execute(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = %s AND tgrelid = %s::regclass", (trigger, table)
        ).fetchone()
        if row is None or row["tgenabled"] != "R":
            missing.append(table)
    return missing


def _install_copy_triggers(conn, tables):
    conn.execute(_COPY_FUNCTION_SQL)
    for table in tables:
        trigger, on = sql.Identifier(_COPY_TRIGGERS[table]), sql.Identifier(table)
        conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, on))
        conn.execute(
            sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
                trigger, on, sql.Identifier(_COPY_FUNCTION)
            )
        )
        # Fires only in the replication apply worker's sessions: the backup's own rows are left alone.
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE REPLICA TRIGGER {}").format(on, trigger))


def _subscription(conn, name):
    return conn.execute(
        "SELECT subenabled, subconninfo, subpublications FROM pg_subscription "
        "WHERE subname = %s AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (name,),
    ).fetchone()


def _shown_conninfo(settings):
    return " ".join(f"{key}={MASK if key == 'password' else value}" for key, value in settings.items())


def _source_domains(source, publication):
    """The source's domains, once it is shown to publish PUBLICATION (else: refused, saying so)."""
    with _Session(source, what="the primary database") as conn:
        if _missing_tables(conn) or _published(conn, publication) is None:
            raise CommandExecutionError(
                f"the primary database {_describe(_settings(source))} has no publication {publication} yet "
                "(its postfix.database / postfixadmin.publication_present has not run): nothing was changed"
            )
        return {row["domain"] for row in conn.execute("SELECT domain FROM domain").fetchall()}


def subscription_present(name, source, publication="postfixadmin_relay", database=None, dry_run=False):
    """
    The backup MX's database (``database``: a superuser's connection to it;
    PostgreSQL 15 lets only superusers create subscriptions) subscribes to
    ``publication`` of the primary's database (``source``: a connection
    dict of the primary's replication role, see role_present and
    role_grants_present). Replicated domains get backupmx true and mailbox
    copies a password nothing matches, from triggers enabled only for
    replicated rows (the backup's own rows are never changed by them).

    Refused, with nothing changed, when the backup has no postfixadmin
    schema, when the primary does not publish ``publication`` yet, or when
    a primary domain is a local domain (backupmx false) on the backup.
    When the subscription is created, copies of the primary's domains an
    earlier snapshot sync (sync_backup) made are removed first: the
    subscription's initial copy replaces them. A subscription with another
    connection or publication is altered, a disabled one enabled. The
    connection's password is stored in pg_subscription (readable by
    superusers only) and appears in no return value or error
    (``********``). Returns the changes, empty when it is as wanted;
    ``dry_run`` True writes nothing.

    CLI Example:

    .. code-block:: bash

        salt mx2 postfixadmin.subscription_present mx2_relay \\
            source='{host: db1.example.com, dbname: postfixadmin, user: postfixadmin_sync, password: secret}'
    """
    name = _identifier("name", name)
    publication = _identifier("publication", publication)
    source_settings = _settings(source)
    conninfo = psycopg.conninfo.make_conninfo(**{key: str(value) for key, value in source_settings.items()})
    source_domains = _source_domains(source, publication)
    with _Session(database, source) as conn:
        _require_schema(conn, "backup")
        changes = {}
        triggers = _copy_trigger_missing(conn)
        if triggers:
            changes["backup_copy_triggers"] = {"old": None, "new": sorted(triggers)}
        current = _subscription(conn, name)
        wanted = {"connection": _shown_conninfo(source_settings), "publications": [publication], "enabled": True}
        if current is None:
            local, copies = set(), set()
            for row in _select(conn, "domain", ("domain", "backupmx"), "domain = ANY(%s::text[])", (list(source_domains),)):
                (copies if row["backupmx"] else local).add(row["domain"])
            if local:
                raise CommandExecutionError(
                    f"domain(s) {', '.join(sorted(local))} are local domains (backupmx false) on the backup: "
                    "nothing was changed"
                )
            if copies:
                changes["snapshot_copies_removed"] = {"old": sorted(copies), "new": None}
            changes["subscription"] = {"old": None, "new": wanted}
        else:
            present_settings = psycopg.conninfo.conninfo_to_dict(current["subconninfo"])
            present = {
                "connection": _shown_conninfo(
                    {key: present_settings[key] for key in CONNECTION_KEYS if key in present_settings}
                ),
                "publications": sorted(current["subpublications"]),
                "enabled": current["subenabled"],
            }
            differs = {key for key in ("publications", "enabled") if present[key] != wanted[key]}
            if present_settings != psycopg.conninfo.conninfo_to_dict(conninfo):
                differs.add("connection")
            if differs:
                changes["subscription"] = {
                    "old": {key: present[key] for key in sorted(differs)},
                    "new": {key: wanted[key] for key in sorted(differs)},
                }
        if not changes or dry_run:
            return changes
        _install_copy_triggers(conn, triggers)
        _statements_kept_out_of_the_server_log(conn)  # the connection below carries the password
        subscription = sql.Identifier(name)
        if current is None:
            with conn.transaction():
                for domain in changes.get("snapshot_copies_removed", {}).get("old", []):
                    _delete_domain_rows(conn, domain)
            conn.execute(
                sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {}").format(
                    subscription, sql.Literal(conninfo), sql.Identifier(publication)
                )
            )
        else:
            old = changes.get("subscription", {}).get("old", {})
            if "connection" in old:
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} CONNECTION {}").format(subscription, sql.Literal(conninfo)))
            if "publications" in old:
                conn.execute(
                    sql.SQL("ALTER SUBSCRIPTION {} SET PUBLICATION {}").format(subscription, sql.Identifier(publication))
                )
            if "enabled" in old:
                conn.execute(sql.SQL("ALTER SUBSCRIPTION {} ENABLE").format(subscription))
        after = _subscription(conn, name)
        if _copy_trigger_missing(conn) or after is None or not after["subenabled"] or (
            psycopg.conninfo.conninfo_to_dict(after["subconninfo"]) != psycopg.conninfo.conninfo_to_dict(conninfo)
        ):
            raise CommandExecutionError(f"subscription {name} is not as set after the change")
        return changes


def subscription_absent(name, database=None, dry_run=False):
    """
    No subscription ``name`` in the backup's database (``database``: a
    superuser's connection); dropping it also drops its replication slot on
    the primary, which must be reachable. The copied rows stay (a snapshot
    sync or a new subscription takes them over). Returns
    ``{"subscription": {"old": name, "new": None}}`` or ``{}``.

    CLI Example:

    .. code-block:: bash

        salt mx2 postfixadmin.subscription_absent mx2_relay
    """
    name = _identifier("name", name)
    with _Session(database) as conn:
        if _subscription(conn, name) is None:
            return {}
        if not dry_run:
            conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(name)))
        return {"subscription": {"old": name, "new": None}}


def subscription_status(name, database=None):
    """
    How far subscription ``name`` in the backup's database (a superuser's
    connection) is: ``{"enabled": bool, "tables": {table: state}}`` with
    PostgreSQL's pg_subscription_rel states (``ready`` once a table's
    initial copy is done and changes stream), or None without it.

    CLI Example:

    .. code-block:: bash

        salt mx2 postfixadmin.subscription_status mx2_relay
    """
    name = _identifier("name", name)
    states = {"i": "initialize", "d": "copying", "f": "copied", "s": "synchronized", "r": "ready"}
    with _Session(database) as conn:
        current = _subscription(conn, name)
        if current is None:
            return None
        rows = conn.execute(
            "SELECT srrelid::regclass::text AS tab, srsubstate FROM pg_subscription_rel "
            "JOIN pg_subscription ON pg_subscription.oid = srsubid WHERE subname = %s",
            (name,),
        ).fetchall()
        return {"enabled": current["subenabled"], "tables": {row["tab"]: states[row["srsubstate"]] for row in rows}}


def database_present(name, owner, database=None, dry_run=False):
    """
    A database ``name`` owned by role ``owner`` (which must exist), created
    with UTF8 encoding. ``database``: a superuser's connection (to any
    database, e.g. ``postgres``). Returns ``{"database": {"old", "new"}}``
    or ``{"owner": {"old", "new"}}``, ``{}`` when it is as wanted.

    CLI Example:

    .. code-block:: bash

        salt db1 postfixadmin.database_present postfixadmin owner=postfixadmin
    """
    name, owner = _text("name", name, 63), _text("owner", owner, 63)
    with _Session(database) as conn:
        if not dry_run and not _role_exists(conn, owner):
            raise CommandExecutionError(f"role {owner} does not exist")
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if row is None:
            changes = {"database": {"old": None, "new": name}, "owner": {"old": None, "new": owner}}
            statement = "CREATE DATABASE {} OWNER {} ENCODING 'UTF8' TEMPLATE template0"
        elif row["owner"] != owner:
            changes, statement = {"owner": {"old": row["owner"], "new": owner}}, "ALTER DATABASE {} OWNER TO {}"
        else:
            return {}
        if not dry_run:
            conn.execute(sql.SQL(statement).format(sql.Identifier(name), sql.Identifier(owner)))
        return changes


def server_settings_present(settings=None, database=None, dry_run=False):
    """
    Server settings (default ``{"wal_level": "logical"}``: what a primary
    needs to publish) set with ALTER SYSTEM (postgresql.auto.conf) and the
    configuration reloaded. ``database``: a superuser's connection. A
    setting that takes effect only after a restart (wal_level does) is
    reported: the result has ``restart_required: True`` until PostgreSQL
    is restarted. Returns ``{setting: {"old", "new"}}`` (plus
    ``restart_required``), ``{}`` when all are in effect.

    CLI Example:

    .. code-block:: bash

        salt db1 postfixadmin.server_settings_present '{wal_level: logical}'
    """
    settings = {"wal_level": "logical"} if settings is None else settings
    if not isinstance(settings, dict) or not settings:
        raise SaltInvocationError(f"settings must be a mapping of server settings: {settings!r}")
    with _Session(database) as conn:
        changes = {}
        for setting, value in settings.items():
            _identifier("setting", setting)
            row = conn.execute(
                "SELECT setting, pending_restart FROM pg_settings WHERE name = %s", (setting,)
            ).fetchone()
            if row is None:
                raise SaltInvocationError(f"unknown PostgreSQL setting: {setting!r}")
            configured = conn.execute(
                "SELECT setting FROM pg_file_settings WHERE name = %s "
                "ORDER BY seqno DESC LIMIT 1",
                (setting,),
            ).fetchone()
            if str(value) != (configured["setting"] if configured else row["setting"]):
                changes[setting] = {"old": row["setting"], "new": str(value)}
                if not dry_run:
                    conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(setting), sql.Literal(str(value))))
        if changes and not dry_run:
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.2)  # the postmaster re-reads its files asynchronously
        pending = [
            setting for setting, value in settings.items()
            if conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (setting,)).fetchone()["setting"]
            != str(value)
        ]
        if pending:
            changes["restart_required"] = sorted(pending)
        return changes
