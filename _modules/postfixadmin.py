"""
Manage a postfixadmin database on PostgreSQL: its domains, mailboxes and
aliases, and what Postfix's lookup tables see of them.

``postfixadmin.*`` is four files, one job each: this one (records),
``postfixadmin_schema.py`` (postfixadmin's schema), ``postfixadmin_replication.py``
(a backup MX's copy of the primary's users: sync_backup and PostgreSQL logical
replication), and the private helpers they share, ``_postfixadmin_db.py``
(validation, connection, rows) and ``_postfixadmin_passwords.py`` (hashing).

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
"""


import importlib

import salt.utils.args
from salt.exceptions import CommandExecutionError, SaltInvocationError

# Shared with the other postfixadmin* modules. Not Salt modules themselves (the loader
# skips names starting with "_"), so reloaded here: code saltutil.sync_modules brings
# then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postfixadmin_fields"))
importlib.reload(importlib.import_module("_postfixadmin_db"))
importlib.reload(importlib.import_module("_postfixadmin_passwords"))
from _postfixadmin_db import (  # noqa: E402
    DEFAULT_PASSWORD_DAYS,
    MASK,
    PSEUDO_DOMAIN,
    _ALIAS_COLUMNS,
    _DOMAIN_COLUMNS,
    _MAILBOX_COLUMNS,
    _Transaction,
    _delete,
    _delete_domain_rows,
    _differences,
    _insert,
    _read,
    _read_one,
    _refuse_existing,
    _require,
    _select_one,
    _update,
    available,
)
from _postfixadmin_fields import (  # noqa: E402
    _FIELDS,
    _address,
    _checked,
    _domain_name,
    _password,
)
from _postfixadmin_passwords import (  # noqa: E402
    _hash_password,
    _password_matches,
)

__virtualname__ = "postfixadmin"


def __virtual__():
    return available(__virtualname__)


# --- validation -----------------------------------------------------------


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


# --- domains --------------------------------------------------------------


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


# --- mailboxes ------------------------------------------------------------


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


# --- aliases --------------------------------------------------------------


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


# --- lookup tables --------------------------------------------------------


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
