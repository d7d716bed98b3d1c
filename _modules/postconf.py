"""
Manage Postfix's main.cf parameters and master.cf services through postconf(1).

Every function takes ``config_dir`` (``postconf -c``); ``None`` means Postfix's
own configuration directory. Nothing here parses main.cf or master.cf: it reads
postconf's own output (``postconf -n``, ``postconf -M``) and edits with
``postconf -e/-X/-M/-F/-P/-PX/-MX``.

Reading runs one postconf process per file; writing runs one process per kind
of edit, never one per parameter. Postfix tools pause on a main.cf modified
less than 2 seconds ago (they wait for a writer to finish); postconf has
finished writing when it exits, so main.cf's mtime is then set 2 s back and
no later tool (the verifying read, ``postfix check``, the reload) waits.

Input is validated before anything is written; a bad item raises
``SaltInvocationError`` naming it.
"""

import hashlib
import importlib
import logging
import os
import pathlib
import re

import salt.utils.atomicfile
import salt.utils.files
import salt.utils.json
import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

# The syntax postfix_records checks pillar with too. Not a Salt module (the loader
# skips names starting with "_"), so reloaded here: code saltutil.sync_modules brings
# then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postconf_syntax"))
from _postconf_syntax import (  # noqa: E402
    SERVICE_FIELDS,
    checked_name,
    checked_service_key,
    split_daemon_arguments,
    tokenize,
    wanted_parameters,
    wanted_service,
)

log = logging.getLogger(__name__)

__virtualname__ = "postconf"
__func_alias__ = {"set_": "set"}

NAME_VALUE_LINE = re.compile(r"^(?P<name>\S+) =(?: (?P<value>.*))?$")
UNUSED_MAIN_PARAMETER = re.compile(r"main\.cf: unused parameter: (?P<name>[^=\s]+)=(?P<value>.*)$")

#: the names postconf -F uses for master.cf's single-column fields (SERVICE_FIELDS)
POSTCONF_FIELD_NAMES = {
    "private": "private",
    "unpriv": "unprivileged",
    "chroot": "chroot",
    "wakeup": "wakeup",
    "maxproc": "process_limit",
}


def __virtual__():
    if salt.utils.path.which("postconf"):
        return __virtualname__
    return (False, "the postconf module needs postconf(1) from Postfix on the PATH")


# --- running postconf --------------------------------------------------------


def _postconf(args, config_dir=None):
    """Run postconf with ARGS; return the cmd.run_all result, raise with postconf's message on failure."""
    argv = ["postconf"]
    if config_dir is not None:
        argv += ["-c", str(config_dir)]
    argv += list(args)
    result = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)
    if result["retcode"] != 0:
        raise CommandExecutionError(f"postconf {' '.join(args[:1])} failed: {result['stderr'] or result['stdout']}")
    return result


def _name_value_lines(text):
    """Parse postconf's ``name = value`` lines into a dict."""
    parsed = {}
    for line in text.splitlines():
        match = NAME_VALUE_LINE.match(line)
        if match:
            parsed[match.group("name")] = match.group("value") or ""
    return parsed


def _unused_main_parameters(stderr):
    """Parameters set in main.cf that postconf -n hides because nothing uses them yet.

    postconf names them in its "unused parameter" warnings: that is where
    user-defined parameters not yet referenced as $name show up.
    """
    unused = {}
    for line in stderr.splitlines():
        match = UNUSED_MAIN_PARAMETER.search(line)
        if match:
            unused[match.group("name")] = match.group("value").strip()
    return unused


def _read_main(config_dir):
    """main.cf's explicit settings: ({name: value} postconf knows, {name: value} unused ones)."""
    result = _postconf(["-n"], config_dir)
    return _name_value_lines(result["stdout"]), _unused_main_parameters(result["stderr"])


def _is_unknown(name, result):
    """True if postconf warned that it does not know parameter NAME."""
    return f"{name}: unknown parameter" in result["stderr"]


def _known_names(config_dir):
    """Every parameter name Postfix knows (built in or derived from master.cf services)."""
    return set(_postconf(["-d", "-H"], config_dir)["stdout"].split())


# --- values ------------------------------------------------------------------


def _squash(value):
    """A value as postconf -n prints it: runs of whitespace become one space."""
    return None if value is None else " ".join(value.split())


# --- main.cf -----------------------------------------------------------------


def _check_known(names, in_use, user_defined, config_dir):
    """Refuse names Postfix does not know unless declared user-defined (a list)."""
    declared = {checked_name(name, "user-defined parameter name") for name in user_defined}
    unknown = set(names) - set(in_use) - declared
    if unknown:
        unknown -= _known_names(config_dir)
    if unknown:
        raise SaltInvocationError(
            f"unknown Postfix parameter(s): {', '.join(sorted(unknown))} "
            "(list parameters used as $name references in user_defined)"
        )


def _main_changes(wanted, current):
    """{name: {"old", "new"}} for each wanted setting main.cf does not already hold."""
    changes = {}
    for name, value in wanted.items():
        old = current.get(name)
        if _squash(old) != _squash(value):
            changes[name] = {"old": old, "new": value}
    return changes


def _main_cf(config_dir):
    """main.cf's path: in CONFIG_DIR, else where postconf looks without -c."""
    if config_dir is None:
        config_dir = os.environ.get("MAIL_CONFIG") or _postconf(["-d", "-h", "config_directory"])["stdout"]
    return pathlib.Path(config_dir) / "main.cf"


def _cool_down(main_cf):
    """Date main.cf 2 s back: Postfix's readers pause until a file is that old,
    to let a writer finish, and postconf's edit is complete already."""
    stat = main_cf.stat()
    os.utime(main_cf, ns=(stat.st_atime_ns, stat.st_mtime_ns - 2_000_000_000))


def _write_main(changes, config_dir):
    main_cf = _main_cf(config_dir)
    settings = [f"{name}={change['new']}" for name, change in changes.items() if change["new"] is not None]
    removals = [name for name, change in changes.items() if change["new"] is None]
    for edit, arguments in (("-e", settings), ("-X", removals)):
        if arguments:
            _postconf([edit, *arguments], config_dir)
            _cool_down(main_cf)


def _verify_main(changes, config_dir):
    in_use, unused = _read_main(config_dir)
    now = {**unused, **in_use}
    missed = [name for name, change in changes.items() if _squash(now.get(name)) != _squash(change["new"])]
    if missed:
        raise CommandExecutionError(f"postconf did not apply main.cf parameter(s): {', '.join(missed)}")


def _restriction_classes(wanted):
    """The names smtpd_restriction_classes declares (Postfix knows them as parameters)."""
    return [name for name in re.split(r"[\s,]+", wanted.get("smtpd_restriction_classes") or "") if name]


def _apply_main(wanted, config_dir, user_defined, test):
    in_use, unused = _read_main(config_dir)
    user_defined = [user_defined] if isinstance(user_defined, str) else list(user_defined or ())
    names = [name for name, value in wanted.items() if value is not None]
    _check_known(names, in_use, [*user_defined, *_restriction_classes(wanted)], config_dir)
    changes = _main_changes(wanted, {**unused, **in_use})
    if changes and not test:
        _write_main(changes, config_dir)
        _verify_main(changes, config_dir)
    return changes


def _read_cache(config_dir):
    """What postconf printed during this run for CONFIG_DIR's main.cf as it reads now:
    ``{"values": {name: effective value}, "complete": True once it printed them all}``,
    started anew whenever main.cf's content or the Postfix build changed. Postfix's
    own config_dir (None) is not cached: a throwaway entry."""
    build = _build()
    if config_dir is None or build is None:
        return {"values": {}, "complete": False}
    try:
        with salt.utils.files.fopen(os.path.join(config_dir, "main.cf"), "rb") as handle:
            digest = (build, hashlib.sha256(handle.read()).hexdigest())
    except OSError:
        return {"values": {}, "complete": False}
    key = f"postconf.read:{config_dir}"
    entry = __context__.get(key)
    if entry is None or entry["digest"] != digest:
        entry = __context__[key] = {"digest": digest, "values": {}, "complete": False}
    return entry


def get(name, config_dir=None):
    """
    Return the effective value of one main.cf parameter (its setting, or Postfix's default).

    name
        The parameter name.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.get myhostname
        salt '*' postconf.get message_size_limit config_dir=/etc/postfix-out
    """
    checked_name(name)
    values = _read_cache(config_dir)["values"]
    if name in values:
        return values[name]
    result = _postconf(["-h", name], config_dir)
    if _is_unknown(name, result):
        unused = _unused_main_parameters(result["stderr"])
        if name not in unused:
            raise SaltInvocationError(f"unknown Postfix parameter: {name}")
        values[name] = unused[name]
    else:
        values[name] = result["stdout"]
    return values[name]


def default(name, config_dir=None):
    """
    Return Postfix's built-in default of one main.cf parameter (``postconf -d``),
    whatever main.cf sets. A parameter this Postfix does not know (e.g. one a
    patch such as VDA would add) raises ``SaltInvocationError``.

    name
        The parameter name.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.default proxy_read_maps
        salt '*' postconf.default virtual_mailbox_limit_maps config_dir=/etc/postfix-out
    """
    checked_name(name)
    result = _postconf(["-d", "-h", name], config_dir)
    if _is_unknown(name, result):
        raise SaltInvocationError(f"unknown Postfix parameter: {name}")
    return result["stdout"]


#: where postconf -d's proxy_read_maps is remembered, with the postconf binary it came from
DEFAULTS_CACHE = ("postconf", "proxy_read_maps.json")


def _build():
    """The postconf binary's path, size and mtime (None if it cannot be found):
    what Postfix's defaults depend on."""
    binary = salt.utils.path.which("postconf") or "postconf"
    try:
        info = os.stat(binary)
    except OSError:
        return None
    return f"{binary}:{info.st_size}:{info.st_mtime_ns}"


def _default_proxy_read_maps(config_dir):
    """postconf -d's proxy_read_maps: a fixed text per Postfix build, so it is read once
    per postconf binary (see _build) and kept in the minion's cache."""
    build = _build()
    if build is None:
        return default("proxy_read_maps", config_dir)
    path = os.path.join(__opts__["cachedir"], *DEFAULTS_CACHE)
    try:
        with salt.utils.files.fopen(path, "r") as handle:
            cached = salt.utils.json.load(handle)
        if cached.get("build") == build and isinstance(cached.get("value"), str):
            return cached["value"]
    except (OSError, ValueError, AttributeError):
        pass
    value = default("proxy_read_maps", config_dir)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with salt.utils.atomicfile.atomic_open(path, "w") as handle:
            salt.utils.json.dump({"build": build, "value": value}, handle)
    except OSError as exc:
        log.debug("postconf: cannot keep proxy_read_maps' default in %s: %s", path, exc)
    return value


def proxy_read_maps_for(params, config_dir=None):
    """
    The ``proxy_read_maps`` value PARAMS needs, or None if it needs none.

    proxymap(8) refuses to open a ``proxy:`` map that ``proxy_read_maps``
    does not name. For every parameter in PARAMS whose value is a
    ``proxy:`` map and that Postfix's default ``proxy_read_maps`` leaves
    out, the result is that default plus ``$name``. PARAMS that set
    ``proxy_read_maps`` themselves need nothing.

    params
        Dict of main.cf parameter names to values.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.proxy_read_maps_for '{"virtual_mailbox_maps": "proxy:pgsql:/etc/postfix/pgsql/mailboxes.cf"}'
    """
    if not isinstance(params, dict):
        raise SaltInvocationError(f"params must be a dict of parameter names to values, not {type(params).__name__}")
    proxied = [name for name, value in params.items() if isinstance(value, str) and "proxy:" in value]
    if not proxied or "proxy_read_maps" in params:
        return None
    current = _default_proxy_read_maps(config_dir)
    missing = [f"${name}" for name in proxied if f"${name}" not in current.split()]
    return " ".join([current, *missing]) if missing else None


def show(config_dir=None, defaults=False):
    """
    Return main.cf parameters as a dict: those set explicitly (``postconf -n``),
    or with ``defaults=True`` every parameter with its effective value.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    defaults
        Include parameters left at their default.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.show
        salt '*' postconf.show defaults=True
    """
    cache = _read_cache(config_dir) if defaults else None
    if cache and cache["complete"]:
        return dict(cache["values"])
    result = _postconf([] if defaults else ["-n"], config_dir)
    parameters = {**_unused_main_parameters(result["stderr"]), **_name_value_lines(result["stdout"])}
    if cache:
        cache["values"].update(parameters)
        cache["complete"] = True
    return parameters


def set_(params, config_dir=None, user_defined=None, test=False):
    """
    Set main.cf parameters: one ``postconf -e`` call for all that differ (and one
    ``postconf -X`` call for those given as None, which are removed).

    Returns ``{name: {"old": old, "new": new}}``; ``old``/``new`` None means
    "not set in main.cf". Values are compared as postconf prints them (runs of
    whitespace count as one space). Booleans become yes/no, lists are joined
    with ", ".

    params
        Dict of parameter names to values.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    user_defined
        Names Postfix does not know that are wanted anyway, e.g. parameters
        master.cf refers to as ``$name`` (the restriction classes
        ``smtpd_restriction_classes`` names are known). Any other unknown
        name is refused.

    test
        Only report what would change.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.set '{"biff": "no", "message_size_limit": 20971520}'
        salt '*' postconf.set '{"mua_client_restrictions": "permit_sasl_authenticated, reject"}' user_defined='[mua_client_restrictions]'
    """
    return _apply_main(wanted_parameters(params), config_dir, user_defined, test)


def unset(names, config_dir=None, test=False):
    """
    Remove parameters from main.cf (one ``postconf -X`` call); they fall back to
    Postfix's defaults. Returns ``{name: {"old": old, "new": None}}`` for those
    that were set.

    names
        A parameter name or a list of them.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    test
        Only report what would change.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.unset biff
        salt '*' postconf.unset '[biff, relayhost]'
    """
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, (list, tuple)):
        raise SaltInvocationError(f"names must be a parameter name or a list of them, not {type(names).__name__}")
    return _apply_main({checked_name(name): None for name in names}, config_dir, None, test)


# --- master.cf ---------------------------------------------------------------


def _parse_service(line):
    """One ``postconf -M`` line -> ("name/type", entry dict)."""
    tokens = tokenize(line)
    name, service_type, *fields = tokens[:7]
    options, arguments = split_daemon_arguments(tokens[8:])
    entry = dict(zip(SERVICE_FIELDS, fields, strict=True))
    entry["command"] = " ".join([tokens[7], *arguments])
    entry["options"] = options
    return f"{name}/{service_type}", entry


def _read_master(config_dir):
    lines = _postconf(["-M"], config_dir)["stdout"].splitlines()
    return dict(_parse_service(line) for line in lines if line.strip())


def _check_option_names(wanted, current, config_dir):
    """Refuse -o names Postfix does not know (it would ignore them as "unused")."""
    new_names = {
        (key, name)
        for key, entry in wanted.items()
        if entry is not None
        for name in entry["options"]
        if name not in (current.get(key) or {}).get("options", {})
    }
    if not new_names:
        return
    known = _known_names(config_dir)
    unknown = sorted(f"{key} -o {name}" for key, name in new_names if name not in known)
    if unknown:
        raise SaltInvocationError(f"unknown Postfix parameter(s) in master.cf options: {', '.join(unknown)}")


def _entry_line(key, entry):
    """A master.cf entry for postconf -M: fields, program, -o options, then the other arguments."""
    program, *arguments = tokenize(entry["command"])
    options = [f"-o {name}={value}" for name, value in entry["options"].items()]
    fields = [entry[field] for field in SERVICE_FIELDS]
    return " ".join([*key.split("/"), *fields, program, *options, *arguments])


def _service_edits(key, have, want):
    """The postconf edits that turn HAVE into WANT, as {flag: [arguments]}."""
    if want is None:
        return {"-MX": [key]}
    if have is None or have["command"] != want["command"]:
        return {"-M": [f"{key}={_entry_line(key, want)}"]}
    changed_fields = [field for field in SERVICE_FIELDS if have[field] != want[field]]
    changed_options = {name: value for name, value in want["options"].items() if have["options"].get(name) != value}
    return {
        "-F": [f"{key}/{POSTCONF_FIELD_NAMES[field]}={want[field]}" for field in changed_fields],
        "-P": [f"{key}/{name}={value}" for name, value in changed_options.items()],
        "-PX": [f"{key}/{name}" for name in have["options"] if name not in want["options"]],
    }


def _master_plan(wanted, current):
    """(changes, {flag: [arguments]}): one postconf call per flag covers every service."""
    changes = {}
    edits = {"-M": [], "-F": [], "-P": [], "-PX": [], "-MX": []}
    for key, want in wanted.items():
        have = current.get(key)
        if have == want:
            continue
        changes[key] = {"old": have, "new": want}
        for flag, arguments in _service_edits(key, have, want).items():
            edits[flag] += arguments
    return changes, edits


def _write_master(edits, config_dir):
    for flag, arguments in edits.items():
        if arguments:
            _postconf([flag, *arguments], config_dir)


def _verify_master(changes, config_dir):
    now = _read_master(config_dir)
    missed = [key for key, change in changes.items() if now.get(key) != change["new"]]
    if missed:
        raise CommandExecutionError(f"postconf did not apply master.cf service(s): {', '.join(missed)}")


def _apply_master(wanted, current, config_dir, test):
    _check_option_names(wanted, current, config_dir)
    changes, edits = _master_plan(wanted, current)
    if changes and not test:
        _write_master(edits, config_dir)
        _verify_master(changes, config_dir)
    return changes


def services(config_dir=None):
    """
    Return master.cf services as ``{"name/type": {"private", "unpriv", "chroot",
    "wakeup", "maxproc", "command", "options"}}``; ``command`` is the program and
    its arguments, ``options`` its ``-o name=value`` settings.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.services
    """
    return _read_master(config_dir)


def set_service(name, fields=None, options=None, config_dir=None, test=False):
    """
    Add or change one master.cf service. Fields and options not given stay as
    they are; an option given as None is removed. A new service needs
    ``fields["command"]``; its other fields default to "-".

    name
        ``name/type``, e.g. ``submission/inet``.

    fields
        Dict of private, unpriv, chroot, wakeup, maxproc and command.

    options
        Dict of ``-o`` parameter names to values (no whitespace in values).

    config_dir
        Postfix configuration directory; default: Postfix's own.

    test
        Only report what would change.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.set_service submission/inet fields='{"private": "n", "chroot": "n", "command": "smtpd"}' options='{"smtpd_sasl_auth_enable": "yes"}'
        salt '*' postconf.set_service submission/inet options='{"smtpd_tls_security_level": null}'
    """
    checked_service_key(name)
    if fields is not None and not isinstance(fields, dict):
        raise SaltInvocationError(f"service {name}: fields must be a dict")
    if options is not None and not isinstance(options, dict):
        raise SaltInvocationError(f"service {name}: options must be a dict")
    unknown = set(fields or {}) - {*SERVICE_FIELDS, "command"}
    if unknown:
        raise SaltInvocationError(f"service {name}: unknown field(s) {', '.join(sorted(unknown))}")
    current = _read_master(config_dir)
    have = current.get(name) or {"options": {}}
    merged_options = {**have["options"], **(options or {})}
    spec = {
        **{key: value for key, value in have.items() if key != "options"},
        **(fields or {}),
        "options": {key: value for key, value in merged_options.items() if value is not None},
    }
    return _apply_master({name: wanted_service(name, spec)}, current, config_dir, test)


def remove_service(name, config_dir=None, test=False):
    """
    Remove a master.cf service (``postconf -MX``).

    name
        ``name/type``, e.g. ``submission/inet``.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    test
        Only report what would change.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.remove_service submission/inet
    """
    checked_service_key(name)
    return _apply_master({name: None}, _read_master(config_dir), config_dir, test)


def set_services(services, config_dir=None, test=False):  # pylint: disable=redefined-outer-name
    """
    Make many master.cf services what SERVICES says, with one postconf call per
    kind of edit (-M, -F, -P, -PX, -MX).

    services
        ``{"name/type": {"private", "unpriv", "chroot", "wakeup", "maxproc",
        "command", "options", "enabled"}}``. Fields default to "-"; ``options``
        is the service's exact ``-o`` set; ``enabled: false`` removes the
        service. Services not listed are left alone.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    test
        Only report what would change.

    CLI Example:

    .. code-block:: bash

        salt '*' postconf.set_services '{"submission/inet": {"private": "n", "chroot": "n", "command": "smtpd", "options": {"smtpd_sasl_auth_enable": "yes"}}}'
    """
    if not isinstance(services, dict):
        raise SaltInvocationError("services must be a dict of name/type to service specs")
    wanted = {key: wanted_service(key, spec) for key, spec in services.items()}
    return _apply_master(wanted, _read_master(config_dir), config_dir, test)
