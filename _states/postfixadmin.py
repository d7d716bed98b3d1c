"""
States for a postfixadmin database (PostgreSQL) and Postfix's pgsql lookup
tables on it. See the ``postfixadmin`` execution module for the connection
settings (``database``) and the fields.

.. code-block:: yaml

    postfixadmin-schema:
      postfixadmin.schema:
        - lookup_user: postfix

    example.com:
      postfixadmin.domain_present:
        - description: Example
        - backupmx: false

    alice@example.com:
      postfixadmin.mailbox_present:
        - password: '{SHA512-CRYPT}$6$...'
        - full_name: Alice Example
        - quota: 1073741824

    info@example.com:
      postfixadmin.alias_present:
        - goto: [alice@example.com]

    old.example.com:
      postfixadmin.domain_absent

    /etc/postfix/pgsql/relay_domains.cf:
      postfixadmin.lookup_table:
        - query: SELECT domain FROM domain WHERE domain = '%s' AND backupmx = true AND active = true
        - database: {host: 127.0.0.1, dbname: postfixadmin, user: postfix, password: secret}

Passwords (mailbox and database) appear in no return value, comment or log
line: they show as ``********``. With test=True the states predict their
changes on a database that has no postfixadmin schema yet (what
``postfixadmin.schema`` would create in the same run).
"""

import grp
import os
import pwd
import re
import urllib.parse

import salt.utils.args
import salt.utils.files
from salt.exceptions import CommandExecutionError, SaltInvocationError

MASK = "********"
LOOKUP_KEYS = ("hosts", "user", "password", "dbname", "query")
DEFAULT_PROBE = "probe@probe.invalid"
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
HEADER = "# Managed by Salt (postfixadmin.lookup_table). Do not edit.\n"

__virtualname__ = "postfixadmin"


def __virtual__():
    if "postfixadmin.domain_get" in __salt__:
        return __virtualname__
    return (False, "the postfixadmin execution module is not available (psycopg 3 missing?)")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _failed(ret, message):
    ret.update(result=False, changes={}, comment=message)
    return ret


def _predicted(ret, changes, comment):
    ret.update(result=None, changes=changes, comment=comment)
    return ret


def _added_changes(fields):
    return {field: {"old": None, "new": value} for field, value in fields.items()}


def _absent(name, kind, key, database):
    """The shared absent flow for a domain, mailbox or alias (KEY: its name as validated)."""
    ret = _ret(name)

    def flow():
        current = __salt__[f"postfixadmin.{kind}_get"](name, database=database)
        if current is None:
            ret["comment"] = f"{kind} {name} is already absent"
            return ret
        changes = {key: {"old": current[key], "new": None}}
        if __opts__["test"]:
            return _predicted(ret, changes, f"{kind} {name} would be deleted")
        __salt__[f"postfixadmin.{kind}_delete"](name, database=database)
        if __salt__[f"postfixadmin.{kind}_get"](name, database=database) is not None:
            raise CommandExecutionError(f"{kind} {name} still exists after deleting it")
        ret.update(changes=changes, comment=f"{kind} {name} deleted")
        return ret

    return _run(ret, flow)


def _present(ret, kind, name, current, apply_present, changes_present):
    """The shared flow: diff -> nothing to do / test prediction / apply (which verifies)."""
    changes = changes_present()
    if not changes:
        ret["comment"] = f"{kind} {name} is in the desired state"
        return ret
    done = "created" if current is None else "updated"
    if __opts__["test"]:
        return _predicted(ret, changes, f"{kind} {name} would be {done}")
    apply_present()
    ret.update(changes=changes, comment=f"{kind} {name} {done}")
    return ret


def _lost_a_race(error):
    """Whether ERROR says the row this flow read as missing exists by now: another mail
    host sharing the database (applying the same pillar at the same time) or
    postfixadmin's web UI added it in between."""
    message = str(error)
    return message.endswith(" already exists") or "duplicate key value violates unique constraint" in message


def _run(ret, flow):
    """Run a state flow; module errors become a failed state with the module's message.
    A flow that lost a race to add a row runs once more: it reads the row the winner
    added and compares with that."""
    try:
        try:
            return flow()
        except CommandExecutionError as exc:
            if not _lost_a_race(exc):
                raise
            return flow()
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _failed(ret, str(exc))


def domain_present(name, database=None, **fields):
    """
    A postfixadmin domain with the given fields (description, aliases,
    mailboxes, maxquota, quota, transport, backupmx, active,
    password_expiry; see ``postfixadmin.domain_add``: maxquota and quota in
    postfixadmin's MB). Fields not given are left as they are (or get
    postfixadmin's defaults when the domain is created).

    .. code-block:: yaml

        example.com:
          postfixadmin.domain_present:
            - description: Example
            - backupmx: false
    """
    ret = _ret(name)

    def flow():
        desired = __salt__["postfixadmin.validate"]("domain", **fields)
        current = __salt__["postfixadmin.domain_get"](name, database=database)

        def changes():
            if current is None:
                return _added_changes({"domain": name, **desired})
            return {f: {"old": current[f], "new": v} for f, v in desired.items() if current[f] != v}

        def apply():
            if current is None:
                __salt__["postfixadmin.domain_add"](name, database=database, **desired)
            else:
                __salt__["postfixadmin.domain_update"](name, database=database, **desired)
            after = __salt__["postfixadmin.domain_get"](name, database=database)
            if after is None or any(after[f] != v for f, v in desired.items()):
                raise CommandExecutionError(f"domain {name} does not hold the requested fields after the change")

        return _present(ret, "domain", name, current, apply, changes)

    return _run(ret, flow)


def domain_absent(name, database=None):
    """
    No postfixadmin domain ``name``: deleted with its mailboxes, aliases and
    alias domains (mail on disk is left alone).
    """
    return _absent(name, "domain", "domain", database)


def mailbox_present(name, password=None, encrypt=None, database=None, **fields):
    """
    A mailbox (``name`` is its address) with the given fields
    (``full_name``: the owner's name, postfixadmin's ``mailbox.name``
    column; ``quota`` in bytes; ``active``). ``password`` (plaintext, or a
    hash in a form postfixadmin writes) is required to create it; for an
    existing mailbox it is changed only if it does not match the stored one
    (a stored hash in another format that matches is kept). ``encrypt``:
    postfixadmin's ``$CONF['encrypt']`` the new hash must suit (see
    ``postfixadmin.mailbox_add``; None: ``postfixadmin:encrypt`` or
    ``dovecot:SHA512-CRYPT``). The password never appears in the output: a
    password change shows as ``********``.

    .. code-block:: yaml

        alice@example.com:
          postfixadmin.mailbox_present:
            - password: '{SHA512-CRYPT}$6$...'
            - full_name: Alice Example
            - quota: 1073741824
    """
    ret = _ret(name)

    def flow():
        desired = __salt__["postfixadmin.validate"]("mailbox", **fields)
        current = __salt__["postfixadmin.mailbox_get"](name, database=database)
        if current is None and password is None:
            raise SaltInvocationError(f"a password is required to create mailbox {name}")

        def password_differs():
            return password is not None and not __salt__["postfixadmin.mailbox_check_password"](
                name, password, database=database
            )

        def changes():
            if current is None:
                return _added_changes({"username": name, "password": MASK, **desired})
            found = {f: {"old": current[f], "new": v} for f, v in desired.items() if current[f] != v}
            if password_differs():
                found["password"] = {"old": MASK, "new": MASK}
            return found

        def apply():
            if current is None:
                __salt__["postfixadmin.mailbox_add"](name, password, encrypt=encrypt, database=database, **desired)
            else:
                update = {**desired, **({"password": password} if password_differs() else {})}
                __salt__["postfixadmin.mailbox_update"](name, encrypt=encrypt, database=database, **update)
            after = __salt__["postfixadmin.mailbox_get"](name, database=database)
            if after is None or any(after[f] != v for f, v in desired.items()) or password_differs():
                raise CommandExecutionError(f"mailbox {name} does not hold the requested fields after the change")

        return _present(ret, "mailbox", name, current, apply, changes)

    return _run(ret, flow)


def mailbox_absent(name, database=None):
    """
    No mailbox ``name`` (nor its self-alias); its mail on disk is left alone.
    """
    return _absent(name, "mailbox", "username", database)


def alias_present(name, goto, database=None, **fields):
    """
    An alias (``name`` is ``user@domain`` or ``@domain`` for a catch-all)
    forwarding to ``goto`` (a list of addresses; order does not matter), with
    the given ``active``.

    .. code-block:: yaml

        info@example.com:
          postfixadmin.alias_present:
            - goto: [alice@example.com]
    """
    ret = _ret(name)

    def flow():
        desired = __salt__["postfixadmin.validate"]("alias", **{**fields, "goto": goto})
        current = __salt__["postfixadmin.alias_get"](name, database=database)

        def same(field, old, new):
            return set(old) == set(new) if field == "goto" else old == new

        def changes():
            if current is None:
                return _added_changes({"address": name, **desired})
            return {f: {"old": current[f], "new": v} for f, v in desired.items() if not same(f, current[f], v)}

        def apply():
            if current is None:
                __salt__["postfixadmin.alias_add"](name, database=database, **desired)
            else:
                __salt__["postfixadmin.alias_update"](name, database=database, **desired)
            after = __salt__["postfixadmin.alias_get"](name, database=database)
            if after is None or any(not same(f, after[f], v) for f, v in desired.items()):
                raise CommandExecutionError(f"alias {name} does not hold the requested fields after the change")

        return _present(ret, "alias", name, current, apply, changes)

    return _run(ret, flow)


def alias_absent(name, database=None):
    """
    No alias ``name``. A mailbox's self-alias is refused: use
    ``mailbox_absent``.
    """
    return _absent(name, "alias", "address", database)


def schema(name, lookup_user=None, database=None):
    """
    postfixadmin's complete schema (3.3, database version 1847) is in the
    database (missing objects created, the version recorded; see
    ``postfixadmin.schema_init``) and ``lookup_user`` can read what
    Postfix's lookup tables need. Fails, changing nothing, on a database
    postfixadmin recorded as older: upgrade it with postfixadmin first.
    """
    ret = _ret(name)

    def flow():
        pending = __salt__["postfixadmin.schema_pending"](lookup_user=lookup_user, database=database)
        if not any(pending.values()):
            ret["comment"] = "the postfixadmin schema is in place"
            return ret
        changes = {key: {"old": None, "new": value} for key, value in pending.items() if value}
        if __opts__["test"]:
            return _predicted(ret, changes, "the postfixadmin schema would be completed")
        __salt__["postfixadmin.schema_init"](lookup_user=lookup_user, database=database)
        if any(__salt__["postfixadmin.schema_pending"](lookup_user=lookup_user, database=database).values()):
            raise CommandExecutionError("the postfixadmin schema is still incomplete after schema_init")
        ret.update(changes=changes, comment="the postfixadmin schema was completed")
        return ret

    return _run(ret, flow)


def quota_usage_table(name, lookup_user=None, database=None):
    """
    The formula's table ``quota_usage`` (Dovecot's quota_clone copy of each
    mailbox's usage, which the quota check reads) is in the database and
    ``lookup_user`` can read it; see ``postfixadmin.quota_usage_table``.
    """
    return _dry_run_flow(
        name, "postfixadmin.quota_usage_table", "the quota_usage table", "made",
        secrets=[_password_of(database)], lookup_user=lookup_user, database=database,
    )


def backup_synced(name, source, target=None):
    """
    This backup MX's postfixadmin database (``target``; None: the minion's
    ``postfixadmin:database``) knows the primary's (``source``) active
    domains (as backupmx), aliases and mailboxes; see
    ``postfixadmin.sync_backup``.
    """
    ret = _ret(name)

    def flow():
        pending = __salt__["postfixadmin.sync_backup"](source, target=target, dry_run=True)
        changes = {
            kind: {action: names for action, names in plan.items() if names}
            for kind, plan in pending.items()
            if any(plan.values())
        }
        if not changes:
            ret["comment"] = "the backup database is in sync with the primary"
            return ret
        if __opts__["test"]:
            return _predicted(ret, changes, "the backup database would be synced with the primary")
        __salt__["postfixadmin.sync_backup"](source, target=target)
        if any(any(plan.values()) for plan in __salt__["postfixadmin.sync_backup"](source, target, True).values()):
            raise CommandExecutionError("the backup database is still out of sync after sync_backup")
        ret.update(changes=changes, comment="the backup database was synced with the primary")
        return ret

    return _run(ret, flow)


# --- logical replication and the database server ----------------------------


def _dry_run_flow(state_name, function, what, done, verify_ignores=(), secrets=(), **kwargs):
    """The shared flow of the replication states: a module function that returns its changes
    (dry_run True: predicted) -> nothing to do / test prediction / apply -> verify."""
    ret = _ret(state_name)

    def flow():
        pending = __salt__[function](dry_run=True, **kwargs)
        if not {key: value for key, value in pending.items() if key not in verify_ignores}:
            ret["comment"] = f"{what} is in the desired state"
            return ret
        if __opts__["test"]:
            return _predicted(ret, pending, f"{what} would be {done}")
        changes = __salt__[function](**kwargs)
        left = {key: value for key, value in __salt__[function](dry_run=True, **kwargs).items() if key not in verify_ignores}
        if left:
            raise CommandExecutionError(f"{what} is still not as wanted after the change: {left}")
        ret.update(changes=changes, comment=f"{what} {done}")
        return ret

    result = _run(ret, flow)
    for secret in secrets:
        if secret:
            result["comment"] = result["comment"].replace(str(secret), MASK)
    return result


def _password_of(settings):
    return settings.get("password") if isinstance(settings, dict) else None


def publication_present(name="postfixadmin_relay", database=None):
    """
    The primary's database publishes domain, alias, alias_domain and
    mailbox's address columns (no password hash) as publication ``name``;
    see ``postfixadmin.publication_present``.

    .. code-block:: yaml

        postfixadmin_relay:
          postfixadmin.publication_present:
            - database: {host: 127.0.0.1, dbname: postfixadmin, user: postfixadmin, password: secret}
    """
    return _dry_run_flow(
        name, "postfixadmin.publication_present", f"publication {name}", "set",
        secrets=[_password_of(database)], name=name, database=database,
    )


def subscription_present(name, source, publication="postfixadmin_relay", database=None):
    """
    The backup's database subscribes to the primary's ``publication``
    (``source``: the primary's replication role connection; ``database``: a
    superuser's connection to the backup's database). Fails, saying so and
    changing nothing, while the primary has no such publication. Passwords
    show as ``********``. See ``postfixadmin.subscription_present``.

    .. code-block:: yaml

        mx2_relay:
          postfixadmin.subscription_present:
            - source: {host: db1.example.com, dbname: postfixadmin, user: postfixadmin_sync, password: secret}
            - database: {host: /var/run/postgresql, dbname: postfixadmin, user: postgres}
    """
    return _dry_run_flow(
        name, "postfixadmin.subscription_present", f"subscription {name}", "set",
        secrets=[_password_of(source), _password_of(database)],
        name=name, source=source, publication=publication, database=database,
    )


def subscription_absent(name, database=None):
    """
    No subscription ``name`` in the backup's database (its slot on the
    primary is dropped with it).
    """
    return _dry_run_flow(
        name, "postfixadmin.subscription_absent", f"subscription {name}", "dropped",
        secrets=[_password_of(database)], name=name, database=database,
    )


def role_present(name, password=None, replication=False, login=True, database=None):
    """
    A PostgreSQL role (``database``: a superuser's connection) with LOGIN,
    REPLICATION as given and the password (a change shows as
    ``********``). See ``postfixadmin.role_present``.

    .. code-block:: yaml

        postfixadmin_sync:
          postfixadmin.role_present:
            - password: secret
            - replication: true
    """
    return _dry_run_flow(
        name, "postfixadmin.role_present", f"role {name}", "set",
        secrets=[password, _password_of(database)],
        name=name, password=password, replication=replication, login=login, database=database,
    )


def role_grants_present(name, grants, database=None):
    """
    Role ``name`` may SELECT the grant set ``grants`` (lookup, replication,
    dovecot). See ``postfixadmin.role_grants_present``.
    """
    return _dry_run_flow(
        name, "postfixadmin.role_grants_present", f"grants {grants} of role {name}", "given",
        secrets=[_password_of(database)], role=name, grants=grants, database=database,
    )


def database_present(name, owner, database=None):
    """
    A database ``name`` owned by ``owner`` (``database``: a superuser's
    connection). See ``postfixadmin.database_present``.
    """
    return _dry_run_flow(
        name, "postfixadmin.database_present", f"database {name}", "set",
        secrets=[_password_of(database)], name=name, owner=owner, database=database,
    )


def server_settings_present(name, settings=None, database=None):
    """
    PostgreSQL server settings (default ``wal_level: logical``) through
    ALTER SYSTEM; the changes include ``restart_required`` (a list of the
    settings) while a restart is owed: watch this state with whatever
    restarts PostgreSQL. See ``postfixadmin.server_settings_present``.
    """
    ret = _dry_run_flow(
        name, "postfixadmin.server_settings_present", "the PostgreSQL server settings", "set",
        verify_ignores=("restart_required",), secrets=[_password_of(database)], settings=settings, database=database,
    )
    if ret["result"] is not False:
        pending = __salt__["postfixadmin.server_settings_present"](settings=settings, database=database, dry_run=True)
        if pending.get("restart_required"):
            ret["changes"]["restart_required"] = pending["restart_required"]
            ret["comment"] += f"; PostgreSQL must be restarted for {', '.join(pending['restart_required'])}"
    return ret


# --- lookup tables ----------------------------------------------------------


def _one_line(key, value):
    text = str(value)
    if not text or text != text.strip() or "\n" in text or "\r" in text:
        raise SaltInvocationError(f"{key} must be one line without leading or trailing blanks")
    return text


def _dbname(dbname, parameters):
    """
    pgsql_table's dbname, carrying libpq PARAMETERS (sslmode, a socket's
    port) as a libpq URI when there are any (libpq reads a dbname that is a
    URI as connection parameters). A ``postgresql://`` URI in ``hosts`` would
    work too, but there Postfix ignores user and password, so the URI would
    carry the password - and Postfix logs the hosts entry with every
    connection error.
    """
    parameters = {key: value for key, value in parameters.items() if value is not None}
    if not parameters:
        return dbname
    sslmode = parameters.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        raise SaltInvocationError(f"sslmode must be one of {', '.join(SSLMODES)}: {sslmode!r}")
    return f"postgresql:///{urllib.parse.quote(str(dbname), safe='')}?{urllib.parse.urlencode(parameters)}"


def _lookup_settings(query, database):
    """
    The pgsql_table(5) settings for QUERY on DATABASE. A host that is a
    directory (libpq's convention: it starts with /) is PostgreSQL's Unix
    socket, which Postfix names ``unix:DIRECTORY``; its port (the socket's
    name, .s.PGSQL.PORT) then goes into the dbname URI, as Postfix passes no
    port for a socket. A socket spares every lookup the TCP stack.
    """
    if not isinstance(database, dict) or not database.get("dbname"):
        raise SaltInvocationError("database must be a dict with at least dbname (and host, port, user, password)")
    host = str(database.get("host") or "localhost")
    port = database.get("port")
    socket = host.startswith("/")
    if socket:
        hosts = f"unix:{host}"
    else:
        hosts = f"inet:{host}:{port}" if port else f"inet:{host}"
    parameters = {"port": port if socket else None, "sslmode": database.get("sslmode")}
    settings = {
        "hosts": hosts,
        "user": database.get("user"),
        "password": database.get("password"),
        "dbname": _dbname(database["dbname"], parameters),
        # Folded onto one line: pgsql_table(5) files hold one line per setting.
        "query": " ".join(str(query).split()),
    }
    return {key: _one_line(key, value) for key, value in settings.items() if value is not None}


def _render(settings):
    return HEADER + "".join(f"{key} = {settings[key]}\n" for key in LOOKUP_KEYS if key in settings)


def _parse(text):
    settings = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line[:1].isspace() and not line.startswith("#"):
            settings[key.strip()] = value.strip()
    return settings


#: a password inside another setting of a hand-written table file: a conninfo
#: ``password=...`` or a URI's ``user:password@``
_EMBEDDED_PASSWORD = re.compile(r"(password=)[^\s&]*|(://[^:/@\s]*:)[^@\s]*(?=@)")


def _shown(key, value):
    if value is None:
        return None
    if key == "password":
        return MASK
    return _EMBEDDED_PASSWORD.sub(lambda match: (match.group(1) or match.group(2)) + MASK, value)


def _file_state(path):
    """(bytes, uid, gid, mode) of the file, or None if it does not exist."""
    try:
        with salt.utils.files.fopen(path, "rb") as handle:
            data = handle.read()
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        return None
    return data, info.st_uid, info.st_gid, info.st_mode & 0o7777


#: Postfix's table readers wait until a file is this old (to let a writer finish)
COOL_DOWN_NS = 2_000_000_000


def _write(path, data, uid, gid, mode):
    """Write atomically: a temporary file beside it, owned and moded first, dated
    COOL_DOWN_NS back (it is complete, so ``postmap -q`` and proxymap need not wait
    for it to settle), then renamed."""
    temporary = f"{path}.salt-tmp"
    if os.path.lexists(temporary):  # left by a killed run: O_CREAT would keep its owner and mode
        os.unlink(temporary)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        written = os.stat(temporary)
        os.utime(temporary, ns=(written.st_atime_ns - COOL_DOWN_NS, written.st_mtime_ns - COOL_DOWN_NS))
        os.replace(temporary, path)
    except OSError:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _restore(path, previous):
    if previous is None:
        os.unlink(path)
    else:
        _write(path, *previous)


def _owner_ids(user, group):
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise SaltInvocationError(f"unknown user or group: {exc.args[0]}") from None


def _file_changes(previous, wanted_settings, uid, gid, mode, user, group):
    old_settings = _parse(previous[0].decode("utf-8", "replace")) if previous else {}
    changes = {
        key: {"old": _shown(key, old_settings.get(key)), "new": _shown(key, wanted_settings.get(key))}
        for key in LOOKUP_KEYS
        if old_settings.get(key) != wanted_settings.get(key)
    }
    if previous and previous[0] != _render(wanted_settings).encode() and not changes:
        changes["content"] = {"old": "edited by hand", "new": "as managed"}
    if not previous or previous[1:3] != (uid, gid):
        old_owner = f"{previous[1]}:{previous[2]}" if previous else None
        changes["owner"] = {"old": old_owner, "new": f"{user}:{group}"}
    if not previous or previous[3] != mode:
        changes["mode"] = {"old": f"{previous[3]:04o}" if previous else None, "new": f"{mode:04o}"}
    return changes


def lookup_table(name, query, database, probe=None, user="root", group="postfix", mode="0640", config_dir=None):
    """
    One pgsql_table(5) file at ``name`` (hosts, user, password, dbname,
    query) owned ``user``:``group`` with ``mode``, connecting with
    ``database`` (a dict: host, port, dbname, user, password, sslmode - the
    lookup role's; sslmode, when set, is written into the dbname line as
    ``postgresql:///DBNAME?sslmode=MODE``, else libpq's default, prefer,
    applies; a host starting with / is the directory of PostgreSQL's Unix
    socket: ``hosts = unix:DIRECTORY``, the port in the dbname line). After
    writing it, the table is proven with
    ``postmap -q PROBE pgsql:NAME`` (found or not found are both fine): if
    Postfix reports any problem (connection, credentials, query) the previous
    file is put back byte-identical (or removed) and the state fails with
    Postfix's message. The password is shown nowhere (``********``).
    ``config_dir``: Postfix's configuration directory for postmap (None:
    Postfix's default).
    """
    ret = _ret(name)
    password = database.get("password") if isinstance(database, dict) else None

    def flow():
        settings = _lookup_settings(query, database)
        try:
            uid, gid = _owner_ids(user, group)
        except SaltInvocationError:
            if not __opts__["test"]:
                raise
            uid = gid = None  # on a bare minion the owner (group postfix) comes with the package
        wanted_mode = int(salt.utils.files.normalize_mode(mode), 8)
        previous = _file_state(name)
        changes = _file_changes(previous, settings, uid, gid, wanted_mode, user, group)
        if not changes:
            ret["comment"] = f"{name} is in the desired state"
            return ret
        if __opts__["test"]:
            return _predicted(ret, changes, f"{name} would be written and proven with postmap -q")
        wanted = (_render(settings).encode(), uid, gid, wanted_mode)
        _write(name, *wanted)
        try:
            __salt__["postfixadmin.lookup"](name, probe or DEFAULT_PROBE, config_dir=config_dir)
            if _file_state(name) != wanted:
                raise CommandExecutionError(f"{name} does not hold what was written")
        except CommandExecutionError:
            _restore(name, previous)
            raise
        ret.update(changes=changes, comment=f"{name} written and proven with postmap -q")
        return ret

    result = _run(ret, flow)
    if password:
        result["comment"] = result["comment"].replace(str(password), MASK)
    return result
