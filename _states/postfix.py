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
(after a reload, for RELOAD_SETTLE_SECONDS), and then keeps a copy of the
main.cf and master.cf it runs on (the last known-good configuration, also in
the minion's cache directory). A Postfix that died taking a reload (a
setting ``postfix check`` does not catch, e.g. ``service_throttle_time =
soon``) is started afresh. When that start, or the start of a restart,
fails, the state puts the known-good main.cf and master.cf back (keeping the
rejected ones in the cache directory, named in the comment) and starts
Postfix on them, so mail keeps flowing; the state still fails with the
reason Postfix logged and never reports success. In test mode nothing runs
that could write: not even ``postfix check``, which creates missing queue
directories and fixes permissions.

.. code-block:: yaml

    postfix-running:
      postfix.running:
        - config_dir: /etc/postfix
        - watch:
          - postconf: main-cf
"""

import hashlib
import logging
import os
import shutil
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
KNOWN_GOOD_DIR = ("postfix", "known-good")
REJECTED_DIR = ("postfix", "rejected")
CONFIG_FILES = ("main.cf", "master.cf")


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


def _cache_dir(kind, config_directory):
    """The cache directory of KIND (KNOWN_GOOD_DIR, REJECTED_DIR) for one Postfix instance."""
    instance = hashlib.sha256(config_directory.encode()).hexdigest()[:16]
    return os.path.join(__opts__["cachedir"], *kind, instance)


def _copy_config(source_dir, target_dir):
    """Copy CONFIG_FILES from SOURCE_DIR to TARGET_DIR, each replaced atomically, times kept
    (an old main.cf spares Postfix tools their wait for a just-written file to settle)."""
    os.makedirs(target_dir, exist_ok=True)
    for filename in CONFIG_FILES:
        target = os.path.join(target_dir, filename)
        temporary = os.path.join(target_dir, f".{filename}.salt-copy")
        shutil.copy2(os.path.join(source_dir, filename), temporary)
        if os.path.exists(target):
            status = os.stat(target)
            os.chown(temporary, status.st_uid, status.st_gid)
            os.chmod(temporary, status.st_mode & 0o7777)
        os.replace(temporary, target)


def _same_config(one_dir, other_dir):
    def content(directory, filename):
        with salt.utils.files.fopen(os.path.join(directory, filename), "rb") as handle:
            return handle.read()

    return all(content(one_dir, name) == content(other_dir, name) for name in CONFIG_FILES)


def _keep_known_good(config_directory):
    """Postfix runs on the configuration in CONFIG_DIRECTORY: keep a copy of it."""
    _copy_config(config_directory, _cache_dir(KNOWN_GOOD_DIR, config_directory))


def _put_back_known_good(config_directory):
    """Replace the configuration with the known-good copy; return where the rejected
    one was saved, or None when there is no different known-good copy."""
    known_good = _cache_dir(KNOWN_GOOD_DIR, config_directory)
    if not os.path.isdir(known_good) or _same_config(known_good, config_directory):
        return None
    rejected = _cache_dir(REJECTED_DIR, config_directory)
    _copy_config(config_directory, rejected)
    _copy_config(known_good, config_directory)
    return rejected


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
    if not _stays_running(config_dir, 0):
        return False
    _keep_known_good(config_directory)
    return True


def _start(ret, config_dir):
    """Start a stopped Postfix."""
    changes = {"postfix": {"old": "stopped", "new": "running"}}
    if __opts__["test"]:
        return _predicted(ret, "Postfix would start", changes)
    if not _start_recorded(config_dir, *_restart_settings(config_dir)):
        return _failed(ret, "Postfix started but is not running")
    ret.update(changes=changes, comment="Postfix started")
    return ret


def _fall_back(ret, config_dir, config_directory, failure):
    """Postfix is down after FAILURE: start it on the known-good configuration; the state fails."""
    try:
        rejected = _put_back_known_good(config_directory)
    except OSError as exc:
        return _failed(ret, f"{failure}; the last configuration it ran on could not be put back: {exc}")
    if rejected is None:
        return _failed(ret, failure)
    try:
        started = _start_recorded(config_dir, *_restart_settings(config_dir))
    except CommandExecutionError as exc:
        started, failure = False, f"{failure}; on the last configuration it ran on: {exc}"
    if not started:
        return _failed(ret, f"{failure}; it is not running (rejected main.cf and master.cf: {rejected})")
    ret["changes"] = {"postfix": {"old": "running", "new": "running the last configuration it ran on"},
                      "config": {"old": f"rejected (kept in {rejected})", "new": "last known-good"}}
    return _failed(ret, f"{failure}. main.cf and master.cf were put back to the last configuration Postfix ran on, "
                        f"and it runs on that; the rejected ones are in {rejected}")


def _start_again(ret, config_dir, record, stopped_how, success):
    """Start Postfix after it stopped (STOPPED_HOW); report SUCCESS (changes, comment) if it runs,
    else fall back to the last configuration it ran on."""
    try:
        started = _start_recorded(config_dir, *record)
    except CommandExecutionError as exc:
        return _fall_back(ret, config_dir, record[0], f"Postfix {stopped_how} and did not start again: {exc}")
    if not started:
        return _fall_back(ret, config_dir, record[0], f"Postfix {stopped_how} and is not running after a start")
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
        _keep_known_good(record[0])
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

    ``postfix check`` first (not in test mode: it creates missing queue
    directories): on failure this state fails and Postfix is not touched.
    A stopped Postfix is started; a running one is reloaded, or stopped
    and started when a parameter in RESTART_PARAMETERS differs from
    the value it was started with (or that is unknown). If Postfix does not
    run afterwards, it is started on the last known-good main.cf and
    master.cf and the state fails (see the module documentation). ``sfun`` (the
    watching state function, always ``running``) and the other low-data
    keyword arguments Salt passes are not used.

    name
        The name of the watching state.

    config_dir
        Postfix configuration directory; default: Postfix's own.
    """
    ret = _result(name)
    try:
        if not __opts__["test"]:
            __salt__["postfix.check"](config_dir)
    except CommandExecutionError as exc:
        return _failed(ret, f"Postfix not reloaded, its configuration check failed: {exc}")
    try:
        if not __salt__["postfix.status"](config_dir):
            return _start(ret, config_dir)
        return _take_changes(ret, config_dir)
    except CommandExecutionError as exc:
        return _failed(ret, str(exc))

