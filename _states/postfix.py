"""
Keep a Postfix instance running and make it take configuration changes.

``postfix.running`` starts a stopped instance. When a state it watches made
changes, its ``mod_watch`` first runs ``postfix check``: if that fails, this
state fails with Postfix's message and Postfix keeps running on the
configuration it has loaded. Otherwise it reloads Postfix, or stops and
starts it when a parameter Postfix reads only at start-up changed
(RESTART_PARAMETERS: a reload would leave the old value in force, or kill
Postfix).

To know whether such a parameter changed, this state records their values
whenever it starts Postfix, in a JSON file in the minion's cache directory,
keyed by configuration directory. A watch with no record restarts (always
safe) and records.

After every start, reload or restart the state verifies that Postfix runs
(after a reload, for RELOAD_SETTLE_SECONDS). A Postfix that died taking a
reload (a setting ``postfix check`` does not catch, e.g.
``service_throttle_time = soon``) is started afresh; if that fails too, the
state fails with the reason Postfix logged, never reports success.

.. code-block:: yaml

    postfix-running:
      postfix.running:
        - config_dir: /etc/postfix
        - watch:
          - postconf: main-cf
"""

import logging
import os
import time

import salt.utils.atomicfile
import salt.utils.files
import salt.utils.json
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "postfix"

#: parameters Postfix takes only on a stop and start, never on a reload
RESTART_PARAMETERS = (
    "inet_interfaces",
    "inet_protocols",
    "queue_directory",
    "data_directory",
    "mail_owner",
    "setgid_group",
    "process_id_directory",
    "daemon_directory",
)
#: how long a reloaded Postfix must stay up to count as running: a master that cannot
#: take the new configuration exits about a second after the reload (Postfix pauses
#: 1 s before a fatal exit)
RELOAD_SETTLE_SECONDS = 1.5
STATUS_INTERVAL_SECONDS = 0.25
RECORD_FILE = ("postfix", "restart_parameters.json")


def __virtual__():
    if "postfix.status" not in __salt__:
        return (False, "the postfix state needs the postfix execution module (is Postfix installed?)")
    if "postconf.show" not in __salt__:
        return (False, "the postfix state needs the postconf execution module")
    return __virtualname__


def _record_path():
    return os.path.join(__opts__["cachedir"], *RECORD_FILE)


def _read_records():
    """{config directory: {restart parameter: value Postfix was started with}}."""
    try:
        with salt.utils.files.fopen(_record_path(), "r") as handle:
            return salt.utils.json.load(handle)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        log.warning("postfix: ignoring unreadable %s: %s", _record_path(), exc)
        return {}


def _write_record(config_directory, settings):
    records = _read_records()
    records[config_directory] = settings
    os.makedirs(os.path.dirname(_record_path()), exist_ok=True)
    with salt.utils.atomicfile.atomic_open(_record_path(), "w") as handle:
        salt.utils.json.dump(records, handle, indent=2, sort_keys=True)


def _restart_settings(config_dir):
    """(configuration directory, {restart parameter: value}) as main.cf has them now."""
    parameters = __salt__["postconf.show"](config_dir=config_dir, defaults=True)
    return parameters["config_directory"], {name: parameters.get(name) for name in RESTART_PARAMETERS}


def _restart_changes(recorded, settings):
    """{parameter: {"old", "new"}} for restart parameters that differ from the record."""
    return {
        name: {"old": recorded.get(name), "new": value}
        for name, value in settings.items()
        if recorded.get(name) != value
    }


def _stays_running(config_dir, seconds):
    """True if Postfix runs now and at every check during the next SECONDS."""
    deadline = time.monotonic() + seconds
    while __salt__["postfix.status"](config_dir):
        if time.monotonic() >= deadline:
            return True
        time.sleep(STATUS_INTERVAL_SECONDS)
    return False


def _result(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _failed(ret, comment):
    ret.update(result=False, comment=comment)
    return ret


def _predicted(ret, comment, changes):
    ret.update(result=None, comment=comment, changes=changes)
    return ret


def _start_recorded(config_dir, config_directory, settings):
    """Start Postfix, record the restart parameters it started with; True if it runs."""
    __salt__["postfix.start"](config_dir)
    _write_record(config_directory, settings)
    return _stays_running(config_dir, 0)


def _start(ret, config_dir):
    """Start a stopped Postfix."""
    changes = {"postfix": {"old": "stopped", "new": "running"}}
    if __opts__["test"]:
        return _predicted(ret, "Postfix would start", changes)
    if not _start_recorded(config_dir, *_restart_settings(config_dir)):
        return _failed(ret, "Postfix started but is not running")
    ret.update(changes=changes, comment="Postfix started")
    return ret


def _start_again(ret, config_dir, record, stopped_how, success):
    """Start Postfix after it stopped (STOPPED_HOW); report SUCCESS (changes, comment) if it runs."""
    try:
        started = _start_recorded(config_dir, *record)
    except CommandExecutionError as exc:
        return _failed(ret, f"Postfix {stopped_how} and did not start again: {exc}")
    if not started:
        return _failed(ret, f"Postfix {stopped_how} and is not running after a start")
    changes, comment = success
    ret.update(changes=changes, comment=comment)
    return ret


def _restart(ret, config_dir, record, reason):
    """Stop and start Postfix; a failed start fails the state with Postfix's reason."""
    changes = {"postfix": {"old": "running", "new": "restarted"}, **reason["changes"]}
    if __opts__["test"]:
        return _predicted(ret, f"Postfix would be restarted: {reason['why']}", changes)
    __salt__["postfix.stop"](config_dir)
    stopped_how = f"was stopped to restart ({reason['why']})"
    return _start_again(ret, config_dir, record, stopped_how, (changes, f"Postfix restarted: {reason['why']}"))


def _reload(ret, config_dir, record):
    """Reload Postfix; if it dies on the new configuration, start it afresh."""
    changes = {"postfix": {"old": "running", "new": "reloaded"}}
    if __opts__["test"]:
        return _predicted(ret, "Postfix would be reloaded", changes)
    __salt__["postfix.reload"](config_dir)
    if _stays_running(config_dir, RELOAD_SETTLE_SECONDS):
        ret.update(changes=changes, comment="Postfix reloaded")
        return ret
    log.warning("postfix: Postfix stopped after a reload; starting it again")
    restarted = {"postfix": {"old": "running", "new": "restarted"}}
    return _start_again(
        ret, config_dir, record, "stopped after a reload", (restarted, "Postfix stopped after a reload and was started again")
    )


def _take_changes(ret, config_dir):
    """Reload a running Postfix, or restart it if a restart parameter changed or is unknown."""
    record = _restart_settings(config_dir)
    config_directory, settings = record
    recorded = _read_records().get(config_directory)
    if recorded is None:
        reason = {"why": "no record of the parameters it was started with", "changes": {}}
    else:
        changes = _restart_changes(recorded, settings)
        if not changes:
            return _reload(ret, config_dir, record)
        reason = {"why": ", ".join(changes) + " changed", "changes": changes}
    return _restart(ret, config_dir, record, reason)


def running(name, config_dir=None):
    """
    Ensure the Postfix instance runs; start it if it does not.

    With ``watch``, a change in a watched state makes Postfix check its
    configuration and reload, or restart when a parameter it reads only at
    start-up changed (see the module documentation).

    name
        An arbitrary name for the state.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    .. code-block:: yaml

        postfix:
          postfix.running:
            - watch:
              - postconf: main-cf
    """
    ret = _result(name)
    try:
        if __salt__["postfix.status"](config_dir):
            ret["comment"] = "Postfix is running"
            return ret
        return _start(ret, config_dir)
    except CommandExecutionError as exc:
        return _failed(ret, f"Postfix did not start: {exc}")


def mod_watch(name, sfun=None, config_dir=None, **kwargs):
    """
    Make Postfix take the configuration a watched state changed.

    ``postfix check`` first: on failure this state fails and Postfix is not
    touched. A stopped Postfix is started; a running one is reloaded, or
    stopped and started when a parameter in RESTART_PARAMETERS differs from
    the value it was started with (or that is unknown). ``sfun`` (the
    watching state function, always ``running``) and the other low-data
    keyword arguments Salt passes are not used.

    name
        The name of the watching state.

    config_dir
        Postfix configuration directory; default: Postfix's own.
    """
    ret = _result(name)
    try:
        __salt__["postfix.check"](config_dir)
    except CommandExecutionError as exc:
        return _failed(ret, f"Postfix not reloaded, its configuration check failed: {exc}")
    try:
        if not __salt__["postfix.status"](config_dir):
            return _start(ret, config_dir)
        return _take_changes(ret, config_dir)
    except CommandExecutionError as exc:
        return _failed(ret, str(exc))

