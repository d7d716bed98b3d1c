"""
Checks of the formula's merged settings (pillar ``postfix`` over
defaults.yaml) before any state runs: every key is one defaults.yaml has
(and of its kind), and every value that ends up in Dovecot's files
(dovecot.conf, dovecot-sql.conf.ext), the DNS cache's configuration, the
pgsql lookup tables, the database connections and postfixadmin's rows is
one they can take.

map.jinja calls :py:func:`settings` when it builds the settings, so a bad
value fails the whole run naming its key, before the first file is written;
it builds them once per run and takes them from :py:func:`kept` in every
other sls (the run's ``__context__``, which each state run starts afresh).
Pure: no other execution module, no reads of the host.

A value that is or may give away a secret (a password, a database
connection, a private key, a secret map's entries) is never shown in an
error.
"""

import copy
import importlib
import ipaddress
import re

from salt.exceptions import SaltInvocationError

# Not a Salt module (the loader skips names starting with "_"), so reloaded here: code
# saltutil.sync_modules brings then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postfix_pillar"))
importlib.reload(importlib.import_module("_postfixadmin_fields"))
importlib.reload(importlib.import_module("_postfixadmin_passwords"))
from _postfix_pillar import checked_as, invalid  # noqa: E402
# the postfixadmin states' own checks of their rows and of postfixadmin's encrypt setting
from _postfixadmin_fields import _address, _checked, _domain_name  # noqa: E402
from _postfixadmin_passwords import _encrypt_format  # noqa: E402

__virtualname__ = "postfix_checks"

#: ``sslmode`` values libpq (and so Dovecot's pgsql driver and Postfix's) knows
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: ``default_pass_scheme`` values Dovecot 2.3 knows (``doveadm pw -l``)
PASSWORD_SCHEMES = (
    "ARGON2I", "ARGON2ID", "BLF-CRYPT", "CLEAR", "CLEARTEXT", "CRAM-MD5", "CRYPT", "DES-CRYPT", "DIGEST-MD5",
    "HMAC-MD5", "LDAP-MD5", "MD5", "MD5-CRYPT", "OTP", "PBKDF2", "PLAIN", "PLAIN-MD4", "PLAIN-MD5",
    "PLAIN-TRUNC", "SCRAM-SHA-1", "SCRAM-SHA-256", "SHA", "SHA1", "SHA256", "SHA256-CRYPT", "SHA512",
    "SHA512-CRYPT", "SMD5", "SSHA", "SSHA256", "SSHA512",
)
DNS_CACHE_BACKENDS = ("unbound", "dnsmasq")
#: how each DNS cache backend writes a forwarder's port after its address
FORWARDER_PORT_SEPARATOR = {"unbound": "@", "dnsmasq": "#"}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: characters a path must not hold: Dovecot's config syntax (comments, blocks,
#: quotes, %variables, <file includes) and whitespace
_PATH_UNSAFE = re.compile(r"[\s#{}\"'\\%<>]")
_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_SYSTEM_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


#: where settings() keeps checked settings for the run
_KEPT = "postfix_checks.kept"
#: postfix:fleet:role (postfix_fleet.ROLES)
FLEET_ROLES = ("database", "primary", "backup")

#: mappings whose keys are the pillar's own (parameters, services, maps, rows,
#: server settings): defaults.yaml cannot name them
FREE_FORM = {
    ("main",), ("master",), ("maps",), ("aliases",), ("submission", "options"),
    ("postfixadmin", "domains"), ("postfixadmin", "mailboxes"), ("postfixadmin", "aliases"),
    ("lookup", "map_type_pkgs"), ("database_server", "settings"), ("performance", "dns_cache", "packages"),
}
#: database connections: defaults.yaml names only some of the keys they take
CONNECTIONS = {("database",), ("database_server", "superuser")}
CONNECTION_KEYS = ("host", "port", "dbname", "user", "password", "sslmode")
#: mappings pillar may set to null (nothing uses them then)
NULLABLE = {("database",)}
#: lists whose state takes a comma-separated text too, and null for its defaults
LIST_OR_TEXT = {("performance", "queue", "mount_options")}


def __virtual__():
    return __virtualname__




def _get(settings, key):
    value = settings
    for part in key.split(":"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _walk(value, path=()):
    """Yield (key path, value) of every key and leaf under VALUE."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path + (str(key),), key
            yield from _walk(item, path + (str(key),))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, path + (str(index),))
    else:
        yield path, value


#: values that are whole files written as given (PEM text), never into a config line
_FILE_CONTENTS = {("tls", "cert_pem"), ("tls", "key_pem")}


def _kind(value):
    return {dict: "a mapping", list: "a list", str: "a text", bool: "true or false",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _shaped_like_defaults(settings, defaults, path=()):
    """Every key of SETTINGS is one defaults.yaml has (a typo would otherwise
    leave the default in place, silently), and is true or false, a list or a
    mapping where defaults.yaml's is. Values are described, not shown: a
    mistyped key may hold a password."""
    for key, value in settings.items():
        here = path + (str(key),)
        name = ":".join(here)
        if key not in defaults:
            known = sorted(set(defaults) | (set(CONNECTION_KEYS) if path in CONNECTIONS else set()))
            if key not in known:
                raise SaltInvocationError(
                    f"pillar postfix:{name}: is not a setting of this formula (under postfix:"
                    f"{':'.join(path) + ':' if path else ''} it knows {', '.join(map(str, known))})")
            continue
        default = defaults[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            invalid(name, "must be true or false (unquoted)", value)
        elif isinstance(default, list) and not isinstance(value, list) and not (
                here in LIST_OR_TEXT and (value is None or isinstance(value, str))):
            raise SaltInvocationError(f"pillar postfix:{name}: must be a list, got {_kind(value)}")
        elif isinstance(default, dict) and not (value is None and here in NULLABLE):
            if not isinstance(value, dict):
                raise SaltInvocationError(f"pillar postfix:{name}: must be a mapping, got {_kind(value)}")
            if here not in FREE_FORM:
                _shaped_like_defaults(value, default, here)


def _free_form_nulls_emptied(settings):
    """A free-form mapping whose entries pillar has all commented out is null in YAML:
    it means none, as the default {} does (in SETTINGS itself, which map.jinja uses)."""
    for path in FREE_FORM:
        parent = _get(settings, ":".join(path[:-1])) if len(path) > 1 else settings
        if isinstance(parent, dict) and path[-1] in parent and parent[path[-1]] is None:
            parent[path[-1]] = {}


def _no_control_characters(settings):
    """A value with a control character is never shown: it may be anything, a secret map's
    entry or a password inline in a main.cf value as well."""
    for path, value in _walk(settings):
        if path in _FILE_CONTENTS:
            if isinstance(value, str) and _CONTROL.search(value.replace("\n", "")):
                raise SaltInvocationError(f"pillar postfix:{':'.join(path)}: PEM text must not contain control "
                                          "characters other than newlines (value not shown)")
            continue
        if isinstance(value, str) and _CONTROL.search(value):
            raise SaltInvocationError(f"pillar postfix:{':'.join(path)}: contains a control character (a newline "
                                      "would add lines to a config file; value not shown)")


def _port(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        invalid(key, "must be a port number, an integer from 1 to 65535", value)


def _absolute_path(key, value, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.startswith("/") or _PATH_UNSAFE.search(value):
        invalid(key, "must be an absolute path without spaces, quotes or any of # { } % < > \\", value)


def _socket(key, value):
    """A socket path relative to Postfix's queue directory, where Postfix and Dovecot both look."""
    if isinstance(value, str) and value.startswith("/"):
        invalid(key, "must be relative to Postfix's queue_directory (such as private/auth): Postfix names it "
                      "relative to the queue directory and Dovecot listens at <queue_directory>/<path>, so "
                      "an absolute path makes them disagree", value)
    if (not isinstance(value, str) or not value or _PATH_UNSAFE.search(value)
            or any(part in ("", ".", "..") for part in value.split("/"))):
        invalid(key, "must be a relative path inside the queue directory (such as private/auth), "
                      "without . or .. parts, spaces or quotes", value)


def _one_of(key, value, allowed, optional=False):
    if value is None and optional:
        return
    if value not in allowed:
        invalid(key, f"must be one of {', '.join(allowed)}", value)


def _ip_address(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _host(key, value, socket_directory=False, wildcard=False):
    """A host name or IP address (or, SOCKET_DIRECTORY, the absolute path of a
    PostgreSQL socket directory; WILDCARD: * or :: for all addresses)."""
    if isinstance(value, str):
        if _ip_address(value) or _HOSTNAME.fullmatch(value) or (wildcard and value in ("*", "::")):
            return
        if socket_directory and value.startswith("/"):
            _absolute_path(key, value)
            return
    kinds = "a host name or an IP address"
    if socket_directory:
        kinds += " (or the absolute path of a socket directory)"
    if wildcard:
        kinds += " (or * for every address)"
    invalid(key, f"must be {kinds}", value)


def _text(key, value, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        invalid(key, "must be a non-empty text", value)


def _positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        invalid(key, "must be a positive integer", value)


def _password(key, value):
    """Postfix's table files drop a value's surrounding whitespace."""
    if value is None:
        return
    if not isinstance(value, str):
        raise SaltInvocationError(f"pillar postfix:{key}: must be a text (value not shown)")
    if value != value.strip():
        raise SaltInvocationError(
            f"pillar postfix:{key}: starts or ends with whitespace, which Postfix's lookup tables would drop "
            "(value not shown)")


def _database(key, database, optional=False):
    if database is None and optional:
        return
    if not isinstance(database, dict):
        invalid(key, "must be a mapping of host, port, dbname, user, password, sslmode", database)
    _host(f"{key}:host", database.get("host"), socket_directory=True)
    _port(f"{key}:port", database.get("port"))
    _text(f"{key}:dbname", database.get("dbname"))
    _text(f"{key}:user", database.get("user"))
    _password(f"{key}:password", database.get("password"))
    _one_of(f"{key}:sslmode", database.get("sslmode"), SSLMODES, optional=True)


def _socket_needs_proxy(settings):
    """Debian runs smtpd, cleanup and trivial-rewrite chrooted, where PostgreSQL's
    socket is out of reach (and ``postmap -q``, which proves a table, is not);
    proxymap is not chrooted."""
    host = _get(settings, "database:host")
    proxy = _get(settings, "postfixadmin:proxy")
    if isinstance(host, str) and host.startswith("/") and proxy is False:
        invalid("postfixadmin:proxy",
                "must be true while database:host is a socket directory (Postfix's chrooted daemons cannot reach "
                "the socket; proxymap can)", proxy)


def _lookup_user(settings):
    lookup_user = _get(settings, "postfixadmin:lookup_user")
    if lookup_user is None:
        return
    if not isinstance(lookup_user, dict):
        invalid("postfixadmin:lookup_user", "must be null or a mapping of name and password", lookup_user)
    _text("postfixadmin:lookup_user:name", lookup_user.get("name"))
    _password("postfixadmin:lookup_user:password", lookup_user.get("password"))


def _listen(key, listen, wildcard=False):
    if not isinstance(listen, dict):
        invalid(key, "must be a mapping of address and port", listen)
    _host(f"{key}:address", listen.get("address"), wildcard=wildcard)
    _port(f"{key}:port", listen.get("port"))


def _dovecot(settings):
    key = "dovecot"
    for name in ("config_dir", "base_dir", "state_dir", "mail_root"):
        _absolute_path(f"{key}:{name}", _get(settings, f"{key}:{name}"))
    log_path = _get(settings, f"{key}:log_path")
    if log_path != "syslog":
        _absolute_path(f"{key}:log_path", log_path)
    for name in ("cert", "key"):
        _absolute_path(f"{key}:ssl:{name}", _get(settings, f"{key}:ssl:{name}"), optional=True)
    for name in ("vmail_user", "vmail_group"):
        value = _get(settings, f"{key}:{name}")
        if not isinstance(value, str) or not _SYSTEM_NAME.fullmatch(value):
            invalid(f"{key}:{name}", "must be a user or group name", value)
    for name in ("vmail_uid", "vmail_gid"):
        _positive_int(f"{key}:{name}", _get(settings, f"{key}:{name}"))
    _one_of(f"{key}:password_scheme", _get(settings, f"{key}:password_scheme"), PASSWORD_SCHEMES)
    for name in ("auth_socket", "lmtp_socket"):
        _socket(f"{key}:{name}", _get(settings, f"{key}:{name}"))
    _listen(f"{key}:quota_status_listen", _get(settings, f"{key}:quota_status_listen"))
    _listen(f"{key}:imap_listen", _get(settings, f"{key}:imap_listen"), wildcard=True)


def _forwarder(key, value, backend):
    if isinstance(value, str):
        address, separator, port = value.rpartition(FORWARDER_PORT_SEPARATOR.get(backend, "@"))
        if not separator:
            address = value
        if _ip_address(address) and (not separator or (port.isdigit() and 1 <= int(port) <= 65535)):
            return
    invalid(key, f"must be an IP address, optionally followed by {FORWARDER_PORT_SEPARATOR.get(backend, '@')}PORT",
            value)


def _dns_cache(settings):
    key = "performance:dns_cache"
    backend = _get(settings, f"{key}:backend")
    _one_of(f"{key}:backend", backend, DNS_CACHE_BACKENDS)
    listen = _get(settings, f"{key}:listen")
    if not isinstance(listen, str) or not _ip_address(listen):
        invalid(f"{key}:listen", "must be an IP address", listen)
    for name in ("forwarders", "forward_local_zones"):
        if not isinstance(_get(settings, f"{key}:{name}"), (list, tuple)):
            invalid(f"{key}:{name}", "must be a list", _get(settings, f"{key}:{name}"))
    for index, forwarder in enumerate(_get(settings, f"{key}:forwarders")):
        _forwarder(f"{key}:forwarders:{index}", forwarder, backend)
    for index, zone in enumerate(_get(settings, f"{key}:forward_local_zones")):
        if not isinstance(zone, str) or not _HOSTNAME.fullmatch(zone):
            invalid(f"{key}:forward_local_zones:{index}", "must be a DNS zone name", zone)
    _absolute_path(f"{key}:resolv_conf", _get(settings, f"{key}:resolv_conf"))
    _absolute_path(f"{key}:config_file", _get(settings, f"{key}:config_file"), optional=True)
    _absolute_path(f"{key}:pidfile", _get(settings, f"{key}:pidfile"))


#: postfixadmin:SECTION -> (the row kind the postfixadmin states take, the check of its key)
_ROWS = {
    "domains": ("domain", _domain_name),
    "mailboxes": ("mailbox", _address),
    "aliases": ("alias", lambda name: _address(name, catch_all=True)),
}
#: what a row's pillar entry holds besides the row's fields
_ROW_SETTINGS = {"ensure", "password", "name"}  # name: postfixadmin/init.sls refuses it, saying why


def _postfixadmin_rows(settings):
    """Every domain, mailbox and alias postfixadmin pillar lists, checked as its state
    checks it when it runs (by then the states before it would have changed things),
    and postfixadmin:encrypt."""
    for section, (kind, check_name) in _ROWS.items():
        rows = _get(settings, f"postfixadmin:{section}") or {}
        for name, entry in rows.items() if isinstance(rows, dict) else ():
            key = f"postfixadmin:{section}:{name}"
            entry = {} if entry is None else entry
            if not isinstance(entry, dict):
                raise SaltInvocationError(f"pillar postfix:{key}: must be a mapping of fields, got {_kind(entry)}")
            checked_as(key, check_name, name)
            if entry.get("ensure", "present") != "present":
                continue
            fields = {field: value for field, value in entry.items() if field not in _ROW_SETTINGS}
            if kind == "alias" and "goto" not in fields:
                raise SaltInvocationError(f"pillar postfix:{key}: goto (the addresses it forwards to) is required")
            for field, value in fields.items():
                checked_as(f"{key}:{field}", _checked, kind, {field: value})
    checked_as("postfixadmin:encrypt", _encrypt_format, _get(settings, "postfixadmin:encrypt"))


def settings(postfix, keep=None, defaults=None):
    """
    Check the merged formula settings POSTFIX (the ``postfix`` pillar tree over
    defaults.yaml, as map.jinja builds it); return True or raise
    SaltInvocationError naming the first bad key (``pillar postfix:KEY: ...``).
    With ``keep`` (a name, e.g. ``postfix:base``: the formula's root and
    saltenv), checked settings are kept for the rest of the run
    (:py:func:`kept`). With ``defaults`` (defaults.yaml's ``postfix`` tree),
    every key must be one defaults.yaml has (but under ``main``, ``master``,
    ``maps``, ``aliases``, ``submission:options``, postfixadmin's rows and
    the like, whose keys are the pillar's own: null there means none), and
    true or false, a list or a mapping where defaults.yaml's value is.

    Checked: no control character anywhere (keys too); ports are integers
    1-65535; paths are absolute; Dovecot's sockets relative to the queue
    directory; ``sslmode``, ``password_scheme`` and the DNS cache backend
    are known values; hosts are names or addresses; postfixadmin's domains,
    mailboxes and aliases as the postfixadmin states check them.

    CLI Example:

    .. code-block:: bash

        salt-call postfix_checks.settings '{"database": {"port": 5432}}'
        salt-call postfix_checks.settings '{"submission": {"enable": true}}' defaults='{"submission": {"enabled": false}}'
    """
    if not isinstance(postfix, dict):
        raise SaltInvocationError(f"pillar postfix: must be a mapping, got {postfix!r}")
    _free_form_nulls_emptied(postfix)
    _no_control_characters(postfix)
    if defaults is not None:
        _shaped_like_defaults(postfix, defaults)
    for key in ("config_dir", "lookup:config_dir"):
        _absolute_path(key, _get(postfix, key), optional=True)
    _absolute_path("postfixadmin:tables_dir", _get(postfix, "postfixadmin:tables_dir"), optional=True)
    _absolute_path("performance:queue:directory", _get(postfix, "performance:queue:directory"), optional=True)
    _database("database", _get(postfix, "database"), optional=True)  # null where nothing uses it
    _database("relay:sync_from", _get(postfix, "relay:sync_from"), optional=True)
    _lookup_user(postfix)
    _postfixadmin_rows(postfix)
    _socket_needs_proxy(postfix)
    _dovecot(postfix)
    _dns_cache(postfix)
    _one_of("fleet:role", _get(postfix, "fleet:role"), FLEET_ROLES, optional=True)
    if keep is not None:
        __context__.setdefault(_KEPT, {})[keep] = copy.deepcopy(postfix)
    return True


def kept(name):
    """
    The settings :py:func:`settings` checked and kept as NAME in this run (a
    copy), or None: map.jinja builds them once per run, not once per sls.

    CLI Example:

    .. code-block:: bash

        salt-call postfix_checks.kept postfix:base
    """
    settings_kept = __context__.get(_KEPT, {}).get(name)
    return copy.deepcopy(settings_kept) if settings_kept is not None else None
