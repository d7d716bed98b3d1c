"""
Manage Postfix's main.cf parameters and master.cf services through postconf(1).

.. code-block:: yaml

    postfix-main:
      postconf.parameters:
        - config_dir: /etc/postfix
        - params:
            biff: false
            message_size_limit: 20971520
            relayhost: null          # removed from main.cf

    submission:
      postconf.service_present:
        - name: submission/inet
        - command: smtpd
        - private: n
        - chroot: n
        - options:
            smtpd_sasl_auth_enable: "yes"

Every state keeps the file it edits as it was, byte for byte, if
``postfix check`` fails after the edit, and then fails with Postfix's message,
so nothing downstream reloads a broken configuration. When a ``postfix.running``
state of the same run watches the state (as in the formula), the check is left
to it: its ``mod_watch`` runs one ``postfix check`` for every file the run
changed before it reloads, and puts back byte-identical the files this module
edited if the check fails (the state saves the file as it was before its edit
in the minion's cache directory, UNCHECKED_DIR, until a check passed).
"""

import hashlib
import logging
import os
import pathlib

import salt.utils.atomicfile
import salt.utils.files
import salt.utils.json
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "postconf"


#: what this state calls: the postconf module writes, the postfix module checks the result
NEEDS = ("postconf.get", "postconf.set", "postconf.set_services", "postfix.check")


def __virtual__():
    # Always loadable: on a bare minion Postfix (and with it the postconf and
    # postfix execution modules) arrives later in the same run.
    return __virtualname__


def _missing_modules():
    """Why the execution modules this state needs are not there, or None."""
    missing = [function for function in NEEDS if function not in __salt__]
    if not missing:
        return None
    reason = getattr(__salt__, "missing_fun_string", lambda name: "")(missing[0])
    return f"{', '.join(missing)} not available (is Postfix installed?){': ' + reason if reason else ''}"


def _not_installed(ret, filename, changes):
    """Postfix is missing: predict CHANGES in test mode, fail otherwise."""
    missing = _missing_modules()
    if not __opts__["test"]:
        return {**ret, "result": False, "comment": f"cannot edit {filename}: {missing}"}
    return {**ret, "result": None, "changes": changes,
            "comment": f"{filename} would be written once Postfix is installed: {', '.join(changes) or 'nothing'}"}


#: where the names each state set are recorded, per configuration directory
MANAGED_DIR = ("postconf", "managed")
#: where a file edited without a check is kept as it was, per configuration directory,
#: until ``postfix.running`` checked the edit (the postfix state reads the same place)
UNCHECKED_DIR = ("postconf", "unchecked")


def _instance_key(directory):
    return hashlib.sha256(os.path.normpath(str(directory)).encode()).hexdigest()[:16]


def _unchecked_path(config_dir, filename):
    directory = _config_file(config_dir, filename).parent
    return os.path.join(__opts__["cachedir"], *UNCHECKED_DIR, _instance_key(directory), filename)


def _keep_unchecked(config_dir, snapshot):
    """Keep SNAPSHOT (the file before an edit nothing checked yet) for postfix.running
    to put back if its check fails. An older one is kept: it is what last passed."""
    path = _unchecked_path(config_dir, snapshot.path.name)
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.salt-tmp"
    with salt.utils.files.fopen(temporary, "wb") as handle:
        handle.write(snapshot.content)
    os.chown(temporary, snapshot.stat.st_uid, snapshot.stat.st_gid)
    os.chmod(temporary, snapshot.stat.st_mode & 0o7777)
    os.utime(temporary, ns=(snapshot.stat.st_atime_ns, snapshot.stat.st_mtime_ns))
    os.replace(temporary, path)


def _requisite_names():
    """The names a requisite can give this state by: its ID and its name."""
    try:
        low = __low__
    except NameError:
        return set()
    return {low.get("__id__"), low.get("name")} - {None}


def _watched_by_running(config_dir):
    """True when a postfix.running state of this run, on the same configuration
    directory, watches this one: it checks the configuration before it reloads."""
    try:
        chunks = __lowstate__
    except NameError:
        return False
    names = _requisite_names()
    sls = __low__.get("__sls__") if names else None
    directory = os.path.normpath(str(config_dir)) if config_dir is not None else None
    for chunk in chunks or ():
        if not isinstance(chunk, dict) or (chunk.get("state"), chunk.get("fun")) != ("postfix", "running"):
            continue
        watcher_dir = chunk.get("config_dir")
        if (os.path.normpath(str(watcher_dir)) if watcher_dir is not None else None) != directory:
            continue
        for requisite in chunk.get("watch") or ():
            for kind, target in (requisite.items() if isinstance(requisite, dict) else ()):
                if (kind == "postconf" and target in names) or (kind == "sls" and sls and target == sls):
                    return True
    return False


def _managed_path(config_dir, filename):
    directory = str(_config_file(config_dir, filename).parent)
    return os.path.join(__opts__["cachedir"], *MANAGED_DIR, hashlib.sha256(directory.encode()).hexdigest()[:16],
                        f"{filename}.json")


def _managed(config_dir, filename):
    """The main.cf parameters (master.cf services) a pruning state set last time."""
    try:
        with salt.utils.files.fopen(_managed_path(config_dir, filename), "r") as handle:
            return set(salt.utils.json.load(handle))
    except FileNotFoundError:
        return set()
    except ValueError as exc:
        log.warning("postconf: ignoring unreadable %s: %s", _managed_path(config_dir, filename), exc)
        return set()


def _record_managed(config_dir, filename, names):
    path = _managed_path(config_dir, filename)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with salt.utils.atomicfile.atomic_open(path, "w") as handle:
        salt.utils.json.dump(sorted(names), handle)


def _config_file(config_dir, filename):
    directory = config_dir if config_dir is not None else __salt__["postconf.get"]("config_directory")
    return pathlib.Path(directory) / filename


class _Snapshot:
    """A file's bytes, mode, owner and times, to put back if Postfix rejects an edit."""

    def __init__(self, path):
        self.path = path
        self.content = path.read_bytes()
        self.stat = path.stat()

    def restore(self):
        """Put the file back as it was (atomically) if it changed."""
        if self.path.read_bytes() == self.content:
            return
        temporary = self.path.with_name(f".{self.path.name}.salt-restore")
        with salt.utils.files.fopen(temporary, "wb") as handle:
            handle.write(self.content)
        os.chown(temporary, self.stat.st_uid, self.stat.st_gid)
        os.chmod(temporary, self.stat.st_mode & 0o7777)
        os.utime(temporary, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
        os.replace(temporary, self.path)


def _predict(ret, edit, filename):
    """test=True: the changes EDIT would make, nothing written."""
    try:
        changes = edit(True)
    except (SaltInvocationError, CommandExecutionError) as exc:
        return {**ret, "result": False, "comment": str(exc)}
    if not changes:
        return {**ret, "comment": f"{filename} already as wanted"}
    return {**ret, "result": None, "changes": changes, "comment": f"{filename} would change: {', '.join(changes)}"}


def _apply(ret, edit, config_dir, filename, applied=None, check=None):
    """Apply EDIT, then ``postfix check``; if either fails, put FILENAME back byte-identical.
    CHECK None: the check is left to a postfix.running state that watches this one, if
    there is one (the file as it was is kept for it); False: to the caller.
    APPLIED() runs once the edit stands."""
    try:
        snapshot = _Snapshot(_config_file(config_dir, filename))
    except (CommandExecutionError, OSError) as exc:
        return {**ret, "result": False, "comment": f"cannot save {filename} before editing it: {exc}"}
    check_later = check is False or (check is None and _watched_by_running(config_dir))
    try:
        changes = edit(False)
        if changes and check_later:
            _keep_unchecked(config_dir, snapshot)
        elif changes:
            __salt__["postfix.check"](config_dir=config_dir)
    except SaltInvocationError as exc:
        return {**ret, "result": False, "comment": str(exc)}
    except (CommandExecutionError, OSError) as exc:
        snapshot.restore()
        return {**ret, "result": False, "comment": f"{exc}; {filename} restored as it was"}
    if applied:
        applied()
    if not changes:
        return {**ret, "comment": f"{filename} already as wanted"}
    checked = " (postfix check: by the postfix.running state that watches this one)" if check_later else ""
    return {**ret, "changes": changes, "comment": f"{filename} changed: {', '.join(changes)}{checked}"}


def _run(name, edit, config_dir, filename, wanted=None, applied=None, check=None):
    """The flow of every state here. EDIT(test) applies the change, or with test=True
    only predicts it, and returns the changes dict. WANTED: the changes to predict
    while Postfix is not installed yet. APPLIED() runs once an applied edit stands.
    CHECK: as for _apply."""
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if _missing_modules():
        return _not_installed(ret, filename, wanted or {})
    if __opts__["test"]:
        return _predict(ret, edit, filename)
    return _apply(ret, edit, config_dir, filename, applied, check)


def parameters(name, params, config_dir=None, user_defined=None, extend_proxy_read_maps=False, prune=False,
               check=None):
    """
    Make main.cf hold PARAMS (one postconf call to read, one to write).

    name
        A label for the state.

    params
        Dict of parameter names to values; a value of None removes the
        parameter from main.cf.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    user_defined
        Names Postfix does not know that are wanted anyway, e.g. parameters
        master.cf refers to as ``$name``.

    extend_proxy_read_maps
        Add the ``proxy:`` maps in PARAMS that the installed Postfix's default
        ``proxy_read_maps`` leaves out to ``proxy_read_maps`` (unless PARAMS
        set it), so proxymap serves them (``postconf.proxy_read_maps_for``).

    prune
        Remove the parameters this state set in an earlier run that PARAMS
        no longer name (the names it set are recorded in the minion's cache
        directory); parameters it never set are left alone.

    check
        When to run ``postfix check`` after an edit: None (default) right
        away, unless a ``postfix.running`` state of this run on the same
        configuration directory watches this one (it checks every file the
        run changed once, before it reloads, and puts this file back
        byte-identical if the check fails); True: right away; False: leave it
        to such a watching state.
    """
    wanted = dict(params or {})

    def edit(test):
        if extend_proxy_read_maps:
            readable = __salt__["postconf.proxy_read_maps_for"](wanted, config_dir=config_dir)
            if readable:
                wanted["proxy_read_maps"] = readable
        if prune:
            wanted.update(dict.fromkeys(_managed(config_dir, "main.cf") - set(wanted)))
        return __salt__["postconf.set"](wanted, config_dir=config_dir, user_defined=user_defined, test=test)

    def applied():
        if prune:
            _record_managed(config_dir, "main.cf", [key for key, value in wanted.items() if value is not None])

    predicted = {key: {"old": None, "new": value} for key, value in wanted.items() if value is not None}
    return _run(name, edit, config_dir, "main.cf", predicted, applied, check)


def services(name, services, config_dir=None, prune=False, check=None):  # pylint: disable=redefined-outer-name
    """
    Make the listed master.cf services what SERVICES says, in one batch.

    name
        A label for the state.

    services
        ``{"name/type": {"private", "unpriv", "chroot", "wakeup", "maxproc",
        "command", "options", "enabled"}}``; fields default to "-", ``options``
        is the service's exact ``-o`` set, ``enabled: false`` removes the
        service. Services not listed are left alone.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    prune
        Remove the services this state added in an earlier run that
        SERVICES no longer name (recorded in the minion's cache directory);
        services it never added are left alone.

    check
        When to run ``postfix check`` after an edit: None (default) right
        away, unless a ``postfix.running`` state of this run on the same
        configuration directory watches this one (it checks every file the
        run changed once, before it reloads, and puts this file back
        byte-identical if the check fails); True: right away; False: leave it
        to such a watching state.
    """
    wanted = dict(services or {})

    def edit(test):
        if prune:
            wanted.update({key: {"enabled": False} for key in _managed(config_dir, "master.cf") - set(wanted)})
        return __salt__["postconf.set_services"](wanted, config_dir=config_dir, test=test)

    def applied():
        if prune:
            _record_managed(config_dir, "master.cf", [key for key, spec in wanted.items() if spec.get("enabled", True)])

    predicted = {key: {"old": None, "new": spec} for key, spec in wanted.items() if spec.get("enabled", True)}
    return _run(name, edit, config_dir, "master.cf", predicted, applied, check)


def service_present(
    name, command, private="-", unpriv="-", chroot="-", wakeup="-", maxproc="-", options=None, config_dir=None
):
    """
    Make one master.cf service exist exactly as given.

    name
        ``name/type``, e.g. ``submission/inet``.

    command
        The program and its arguments, e.g. ``smtpd`` (no ``-o`` options here).

    private, unpriv, chroot, wakeup, maxproc
        master.cf's columns; "-" means Postfix's default.

    options
        Dict of ``-o`` parameter names to values: the service's exact ``-o`` set.

    config_dir
        Postfix configuration directory; default: Postfix's own.
    """
    spec = {
        "command": command,
        "private": private,
        "unpriv": unpriv,
        "chroot": chroot,
        "wakeup": wakeup,
        "maxproc": maxproc,
        "options": options,
    }
    return services(name, {name: spec}, config_dir=config_dir)


def service_absent(name, config_dir=None):
    """
    Make sure a master.cf service does not exist.

    name
        ``name/type``, e.g. ``submission/inet``.

    config_dir
        Postfix configuration directory; default: Postfix's own.
    """
    return services(name, {name: {"enabled": False}}, config_dir=config_dir)


def expected(name, known=None, values=None, reason="", config_dir=None):
    """
    Fail unless the installed Postfix is what the rest of the run assumes:
    it knows every parameter in KNOWN (e.g. the ones a patch such as VDA
    adds) and has the effective VALUES (e.g. the queue_directory other
    daemons' sockets are placed in). Writes nothing: states that rely on it
    require this one, so a mismatch fails the run before anything changes.

    name
        A label for the state.

    known
        Parameter names the installed Postfix must know.

    values
        ``{parameter: value}`` the installed Postfix must have in effect.

    reason
        What relies on them, for the failure message (e.g. the pillar key).

    config_dir
        Postfix configuration directory; default: Postfix's own.

    .. code-block:: yaml

        postfix-vda-supported:
          postconf.expected:
            - known: [virtual_mailbox_limit_maps]
            - reason: "pillar postfix:quota:backend: vda needs the VDA patch"
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    known, values = list(known or ()), dict(values or {})
    what = ", ".join([*known, *(f"{key} = {value}" for key, value in values.items())])
    prefix = f"{reason}: " if reason else ""
    if _missing_modules():
        if __opts__["test"]:
            return {**ret, "result": None, "comment": f"would check the installed Postfix for {what}"}
        return {**ret, "result": False, "comment": f"{prefix}{_missing_modules()}"}
    problems = []
    try:
        for parameter in known:
            try:
                __salt__["postconf.default"](parameter, config_dir=config_dir)
            except SaltInvocationError:
                problems.append(f"the installed Postfix does not know {parameter}")
        # the full listing, which postfix.running reads later in the run anyway
        effective = __salt__["postconf.show"](config_dir=config_dir, defaults=True) if values else {}
        for parameter, value in values.items():
            current = effective.get(parameter)
            if current != str(value):
                problems.append(f"{parameter} is {current!r}, not {str(value)!r}")
    except CommandExecutionError as exc:
        problems.append(str(exc))
    if problems:
        return {**ret, "result": False, "comment": prefix + "; ".join(problems)}
    ret["comment"] = f"the installed Postfix has {what}"
    return ret


def stock_main_cf(name, source):
    """
    Ensure main.cf exists: where there is none (Debian's "No configuration"
    install), copy the stock one the package ships (SOURCE) into place, with
    its mode. An existing main.cf is left alone, whatever it holds.

    (A ``file.copy`` with ``onlyif`` would do the same, but Salt looks up
    ``file.mod_run_check`` for any ``onlyif``, which loads every state and
    execution module: seconds on every run.)

    name
        The path of main.cf.

    source
        The stock main.cf, e.g. ``/usr/share/postfix/main.cf.debian``. In test
        mode before the package is installed it need not exist yet.

    .. code-block:: yaml

        postfix-package-main-cf-present:
          postconf.stock_main_cf:
            - name: /etc/postfix/main.cf
            - source: /usr/share/postfix/main.cf.debian
            - require:
              - pkg: postfix-package-installed
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if os.path.lexists(name):
        ret["comment"] = f"{name} exists"
        return ret
    changes = {name: {"old": None, "new": f"copied from {source}"}}
    if __opts__["test"]:
        brought = "" if os.path.exists(source) else " (which the package brings)"
        return {**ret, "result": None, "changes": changes, "comment": f"{name} would be copied from {source}{brought}"}
    try:
        with salt.utils.files.fopen(source, "rb") as handle:
            contents = handle.read()
        mode = os.stat(source).st_mode & 0o7777
        os.makedirs(os.path.dirname(name), exist_ok=True)
        with salt.utils.atomicfile.atomic_open(name, "wb") as handle:
            handle.write(contents)
        os.chmod(name, mode)
    except OSError as exc:
        return {**ret, "result": False, "comment": f"{name} is missing and could not be copied from {source}: {exc}"}
    return {**ret, "changes": changes, "comment": f"{name} copied from {source}"}
