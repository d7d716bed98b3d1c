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
so nothing downstream reloads a broken configuration.
"""

import logging
import os
import pathlib

import salt.utils.files
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "postconf"


#: what this state calls: the postconf module writes, the postfix module checks the result
NEEDS = {"postconf": ("postconf.get", "postconf.set", "postconf.set_services"), "postfix": ("postfix.check",)}


def __virtual__():
    for module, functions in NEEDS.items():
        if not all(function in __salt__ for function in functions):
            return (False, f"the postconf state needs the {module} execution module (is Postfix installed?)")
    return __virtualname__


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


def _apply(ret, edit, config_dir, filename):
    """Apply EDIT, then ``postfix check``; if either fails, put FILENAME back byte-identical."""
    try:
        snapshot = _Snapshot(_config_file(config_dir, filename))
    except (CommandExecutionError, OSError) as exc:
        return {**ret, "result": False, "comment": f"cannot save {filename} before editing it: {exc}"}
    try:
        changes = edit(False)
        if changes:
            __salt__["postfix.check"](config_dir=config_dir)
    except SaltInvocationError as exc:
        return {**ret, "result": False, "comment": str(exc)}
    except CommandExecutionError as exc:
        snapshot.restore()
        return {**ret, "result": False, "comment": f"{exc}; {filename} restored as it was"}
    if not changes:
        return {**ret, "comment": f"{filename} already as wanted"}
    return {**ret, "changes": changes, "comment": f"{filename} changed: {', '.join(changes)}"}


def _run(name, edit, config_dir, filename):
    """The flow of every state here. EDIT(test) applies the change, or with test=True
    only predicts it, and returns the changes dict."""
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if __opts__["test"]:
        return _predict(ret, edit, filename)
    return _apply(ret, edit, config_dir, filename)


def parameters(name, params, config_dir=None, user_defined=None):
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
    """

    def edit(test):
        return __salt__["postconf.set"](params, config_dir=config_dir, user_defined=user_defined, test=test)

    return _run(name, edit, config_dir, "main.cf")


def services(name, services, config_dir=None):  # pylint: disable=redefined-outer-name
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
    """

    def edit(test):
        return __salt__["postconf.set_services"](services, config_dir=config_dir, test=test)

    return _run(name, edit, config_dir, "master.cf")


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
