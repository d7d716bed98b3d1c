"""
Keep a Postfix instance running on the configuration on disk, and prove it serves.

``postfix.running`` starts a stopped instance, and pays what is owed to a
running one: a restart when a parameter Postfix reads only at start-up
(RESTART_PARAMETERS) differs from the value it was started with, a reload
when main.cf, master.cf or one of ``config_files`` (e.g. lookup tables)
differs from the configuration it was last proven to serve on. What is owed
is derived from records on disk (the restart parameters Postfix was started
with, and a copy of the last configuration proven to serve, both in the
minion's cache directory), so a run that failed or was killed after
changing a file still owes the reload to the next one. When a state it
watches made changes, its ``mod_watch`` runs ``postfix check`` first (on
failure Postfix is not touched) and then reloads even if nothing else
differs.

Every start, reload and restart is proven, not assumed: after a reload the
master must log that it took it (with ``maillog_file``), or, without one,
replace its queue manager (or pickup) process, which it does only once it
has read the new configuration (where neither can be seen, it must stay up
RELOAD_SETTLE_SECONDS); then every inet listener of master.cf must
accept a connection (smtpd and postscreen greet with 220), and no fatal or
panic line may appear in ``maillog_file`` since. If Postfix does not serve,
the state puts the last known-good main.cf and master.cf back (keeping the
rejected ones in the cache directory, named in the comment), makes Postfix
take them and proves that, and fails with Postfix's own messages. In test
mode nothing runs that could write: not even ``postfix check``, which
creates missing queue directories and fixes permissions.

The postconf states leave ``postfix check`` to this state when it watches
them (one check per run, covering every file the run changed): they keep
the file as it was before their edit in the minion's cache directory, and
when the check fails, this state puts those files back byte-identical
before anything reloads. Such a kept file also makes a later run check
first (a run killed between the edit and the check).

.. code-block:: yaml

    postfix-running:
      postfix.running:
        - config_dir: /etc/postfix
        - config_files: [/etc/postfix/pgsql/virtual_mailbox_maps.cf]
        - watch:
          - postconf: main-cf
"""

import hashlib
import logging
import os
import re
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
#: how long to wait for the master to log that it took a reload
RELOAD_LOG_SECONDS = 10
STATUS_INTERVAL_SECONDS = 0.25
RECORD_FILE = ("postfix", "restart_parameters.json")
KNOWN_GOOD_DIR = ("postfix", "known-good")
REJECTED_DIR = ("postfix", "rejected")
CONFIG_FILES = ("main.cf", "master.cf")
#: where the postconf states keep a file as it was before an edit not checked yet
UNCHECKED_DIR = ("postconf", "unchecked")
#: the master's children it replaces once it has taken a reload
RELOADED_CHILDREN = ("qmgr", "pickup")


def __virtual__():
    # Always loadable: on a bare minion Postfix (and with it the postfix and
    # postconf execution modules) arrives later in the same run.
    return __virtualname__


def _missing_modules():
    """Why the execution modules this state needs are not there, or None."""
    missing = [function for function in ("postfix.status", "postconf.show") if function not in __salt__]
    if not missing:
        return None
    return f"{', '.join(missing)} not available (is Postfix installed?)"


def _not_installed(ret):
    """Postfix is missing: in test mode it would be started once installed; else fail."""
    if __opts__["test"]:
        return _predicted(ret, "Postfix would be started once it is installed",
                          {"postfix": {"old": "not installed", "new": "running"}})
    return _failed(ret, f"Postfix cannot be started: {_missing_modules()}")


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
    os.makedirs(target_dir, mode=0o700, exist_ok=True)
    os.chmod(target_dir, 0o700)  # the digests kept beside the copies are of files holding passwords
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


def _digests(paths):
    """{path: sha256 of its content, or None when it is missing}."""
    digests = {}
    for path in paths:
        try:
            with salt.utils.files.fopen(path, "rb") as handle:
                digests[path] = hashlib.sha256(handle.read()).hexdigest()
        except FileNotFoundError:
            digests[path] = None
    return digests


def _known_good_digests_path(config_directory):
    return os.path.join(_cache_dir(KNOWN_GOOD_DIR, config_directory), "files.json")


def _keep_known_good(config_directory, config_files=()):
    """Postfix serves on the configuration in CONFIG_DIRECTORY (and CONFIG_FILES,
    e.g. lookup tables): keep a copy of main.cf and master.cf, digests of the rest."""
    _copy_config(config_directory, _cache_dir(KNOWN_GOOD_DIR, config_directory))
    with salt.utils.atomicfile.atomic_open(_known_good_digests_path(config_directory), "w") as handle:
        salt.utils.json.dump(_digests(config_files), handle, indent=2, sort_keys=True)
    os.chmod(_known_good_digests_path(config_directory), 0o600)


def _reload_owed(config_directory, config_files=()):
    """Why Postfix may not run the configuration on disk (it differs from the one
    last proven to serve, or none was), or None. Kept on disk, so a run that
    failed or was killed after changing a file still owes the reload."""
    known_good = _cache_dir(KNOWN_GOOD_DIR, config_directory)
    try:
        with salt.utils.files.fopen(_known_good_digests_path(config_directory), "r") as handle:
            digests = salt.utils.json.load(handle)
        same = _same_config(known_good, config_directory)
    except (OSError, ValueError):
        return "no configuration was proven to serve yet"
    if not same:
        return "main.cf or master.cf changed since Postfix last took its configuration"
    changed = [path for path, digest in _digests(config_files).items() if digests.get(path) != digest]
    if changed:
        return f"{', '.join(changed)} changed since Postfix last took its configuration"
    return None


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


def _unchecked_dir(config_dir, config_directory):
    directory = os.path.normpath(str(config_dir if config_dir is not None else config_directory))
    instance = hashlib.sha256(directory.encode()).hexdigest()[:16]
    return os.path.join(__opts__["cachedir"], *UNCHECKED_DIR, instance)


def _unchecked(config_dir, config_directory):
    """{file name: the copy kept of it} for the files edited since the last check."""
    directory = _unchecked_dir(config_dir, config_directory)
    return {name: os.path.join(directory, name) for name in CONFIG_FILES
            if os.path.exists(os.path.join(directory, name))}


def _put_back_unchecked(config_directory, kept):
    """Put the files in KEPT ({name: copy}) back as they were before their unchecked
    edit: content, owner, mode and times."""
    for name, copy in kept.items():
        target = os.path.join(config_directory, name)
        temporary = os.path.join(config_directory, f".{name}.salt-restore")
        status = os.stat(copy)
        shutil.copy2(copy, temporary)
        os.chown(temporary, status.st_uid, status.st_gid)
        os.chmod(temporary, status.st_mode & 0o7777)
        os.utime(temporary, ns=(status.st_atime_ns, status.st_mtime_ns))
        os.replace(temporary, target)
        os.unlink(copy)


def _check(config_dir, config_directory):
    """``postfix check``; when it fails, the files the postconf states edited since
    the last check are put back byte-identical, and CommandExecutionError names them."""
    kept = _unchecked(config_dir, config_directory)
    try:
        __salt__["postfix.check"](config_dir)
    except CommandExecutionError as exc:
        if not kept:
            raise
        try:
            _put_back_unchecked(str(config_dir if config_dir is not None else config_directory), kept)
        except OSError as error:
            raise CommandExecutionError(f"{exc}; {', '.join(kept)} could not be put back: {error}") from None
        were = "they were" if len(kept) > 1 else "it was"
        raise CommandExecutionError(f"{exc}; {' and '.join(kept)} restored as {were} before the edit") from None
    for copy in kept.values():
        os.unlink(copy)


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


def _master_pid(queue_directory):
    """The PID in the master's pid file, or None."""
    try:
        with salt.utils.files.fopen(os.path.join(queue_directory, "pid", "master.pid"), "r") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def _children(pid):
    """{child pid: program} of the master's RELOADED_CHILDREN (from /proc; {} without it)."""
    found = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with salt.utils.files.fopen(f"/proc/{entry}/stat", "r") as handle:
                command, _, rest = handle.read().rpartition(")")
            program = command.partition("(")[2]
            if program in RELOADED_CHILDREN and int(rest.split()[1]) == pid:
                found[int(entry)] = program
        except (OSError, ValueError, IndexError):
            continue
    return found


def _alive(pid):
    try:
        with salt.utils.files.fopen(f"/proc/{pid}/stat", "r") as handle:
            return handle.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children_replaced(config_dir, master, before):
    """Wait until the master (PID MASTER) has replaced one of its children BEFORE
    ({pid: program}): it restarts them only after it has read the new configuration
    (a master that cannot take it exits instead)."""
    deadline = time.monotonic() + RELOAD_LOG_SECONDS
    while time.monotonic() < deadline:
        if not _alive(master):
            return False
        now = _children(master)
        if any(pid not in before and program in before.values() for pid, program in now.items()):
            return True
        time.sleep(STATUS_INTERVAL_SECONDS / 5)
    return __salt__["postfix.status"](config_dir)


def _reload_taken(config_dir, log_offset, master=None, before=None):
    """Wait until the master has re-read its configuration after ``postfix reload``:
    it logs "reload" (or a fatal line) to maillog_file; without one, it replaces its
    children BEFORE ({pid: program} of the master MASTER); where neither can be
    seen, it must stay up for RELOAD_SETTLE_SECONDS (a master that cannot take a
    configuration exits about a second after the reload)."""
    maillog = __salt__["postconf.get"]("maillog_file", config_dir=config_dir)
    if not maillog and master and before:
        return _children_replaced(config_dir, master, before)
    if not maillog:
        return _stays_running(config_dir, RELOAD_SETTLE_SECONDS)
    deadline = time.monotonic() + RELOAD_LOG_SECONDS
    while time.monotonic() < deadline:
        try:
            with salt.utils.files.fopen(maillog, "rb") as handle:
                handle.seek(log_offset)
                logged = handle.read().decode(errors="replace")
        except OSError:
            logged = ""
        if re.search(r"master\[\d+\]: (reload -- |fatal:|panic:)", logged):
            return True
        time.sleep(STATUS_INTERVAL_SECONDS / 5)
    return __salt__["postfix.status"](config_dir)


def _result(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _failed(ret, comment):
    ret.update(result=False, comment=comment)
    return ret


def _predicted(ret, comment, changes):
    ret.update(result=None, comment=comment, changes=changes)
    return ret


class _Instance:
    """One Postfix instance as this state handles it: where its configuration is,
    the extra files it serves from, and the restart parameters main.cf has now."""

    def __init__(self, config_dir, config_files):
        self.config_dir = config_dir
        self.config_files = list(config_files or ())
        parameters = __salt__["postconf.show"](config_dir=config_dir, defaults=True)
        self.config_directory = parameters["config_directory"]
        self.queue_directory = parameters["queue_directory"]
        self.restart_settings = {name: parameters.get(name) for name in RESTART_PARAMETERS}

    def restart_changes(self):
        """{parameter: {"old", "new"}} for restart parameters that differ from the
        values Postfix was started with; None when those are not known."""
        recorded = _read_records().get(self.config_directory)
        if recorded is None:
            return None
        return _restart_changes(recorded, self.restart_settings)


def _prove(instance, log_offset):
    """The problems that keep Postfix from serving ([] when it serves); on success the
    configuration it serves on becomes the known-good one."""
    problems = __salt__["postfix.probe"](instance.config_dir, log_offset=log_offset)
    if not problems:
        _keep_known_good(instance.config_directory, instance.config_files)
    return problems


def _start_proven(instance):
    """Start Postfix, record the restart parameters it started with, prove it serves:
    the problems ([] when it serves). Raises CommandExecutionError if it does not start."""
    offset = __salt__["postfix.log_size"](instance.config_dir)
    __salt__["postfix.start"](instance.config_dir)
    _write_record(instance.config_directory, instance.restart_settings)
    return _prove(instance, offset)


def _reload_proven(instance):
    """Reload Postfix and prove it serves: the problems ([] when it serves)."""
    offset = __salt__["postfix.log_size"](instance.config_dir)
    master = _master_pid(instance.queue_directory)
    before = _children(master) if master else {}
    __salt__["postfix.reload"](instance.config_dir)
    if not _reload_taken(instance.config_dir, offset, master, before):
        log.warning("postfix: Postfix stopped after a reload; starting it again")
        return _start_proven(instance)
    return _prove(instance, offset)


def _restart_proven(instance):
    __salt__["postfix.stop"](instance.config_dir)
    return _start_proven(instance)


def _roll_back(ret, config_dir, config_files, failure):
    """The configuration on disk does not serve (FAILURE): put the last one proven to
    serve back, make Postfix take it, and fail with FAILURE either way."""
    config_directory = _Instance(config_dir, config_files).config_directory
    try:
        rejected = _put_back_known_good(config_directory)
    except OSError as exc:
        return _failed(ret, f"{failure}; the last configuration it served on could not be put back: {exc}")
    if rejected is None:
        return _failed(ret, f"{failure} (and it served on no other configuration before)")
    instance = _Instance(config_dir, config_files)
    try:
        # a restart, not a reload: the master throttles a service whose processes
        # failed on the rejected configuration, and only a restart ends that
        problems = _restart_proven(instance)
    except CommandExecutionError as exc:
        problems = [str(exc)]
    if problems:
        return _failed(ret, f"{failure}; on the last configuration it served on, too: {'; '.join(problems)} "
                            f"(rejected main.cf and master.cf: {rejected})")
    ret["changes"] = {"postfix": {"old": "rejected configuration", "new": "serving on the last known-good one"},
                      "config": {"old": f"rejected (kept in {rejected})", "new": "last known-good"}}
    return _failed(ret, f"{failure}. main.cf and master.cf were put back to the last configuration Postfix served on, "
                        f"and it serves on that; the rejected ones are in {rejected}")


#: what each way of taking the configuration reports: (the changes' "new", the comment's verb)
ACTIONS = {"start": ("running", "started"), "reload": ("reloaded", "reloaded"), "restart": ("restarted", "restarted")}


def _take(ret, instance, action, why):
    """Make Postfix (INSTANCE) take its configuration by ACTION (start, reload, restart),
    prove it serves, and report; roll back to the last known-good configuration if it does not."""
    new, verb = ACTIONS[action]
    changes = {"postfix": {"old": "stopped" if action == "start" else "running", "new": new}}
    if action == "restart":
        changes.update(instance.restart_changes() or {})
    if __opts__["test"]:
        return _predicted(ret, f"Postfix would be {verb}: {why}", changes)
    proven = {"start": _start_proven, "reload": _reload_proven, "restart": _restart_proven}[action]
    try:
        problems = proven(instance)
    except CommandExecutionError as exc:
        problems = [str(exc)]
    if problems:
        return _roll_back(ret, instance.config_dir, instance.config_files, f"Postfix {verb} ({why}) but does not serve: {'; '.join(problems)}")
    ret.update(changes=changes, comment=f"Postfix {verb}: {why}")
    return ret


def _converge(ret, config_dir, config_files, watched=False):
    """Start a stopped Postfix; pay an owed restart or reload (or, WATCHED, the one a
    watched state's change asks for); else report it running."""
    instance = _Instance(config_dir, config_files)
    if not __salt__["postfix.status"](config_dir):
        return _take(ret, instance, "start", "it was not running")
    restart = instance.restart_changes()
    if restart is None:
        return _take(ret, instance, "restart", "no record of the parameters it was started with")
    if restart:
        return _take(ret, instance, "restart", f"{', '.join(restart)} changed")
    owed = _reload_owed(instance.config_directory, instance.config_files)
    if owed or watched:
        return _take(ret, instance, "reload", owed or "a watched state changed")
    ret["comment"] = "Postfix is running on its configuration"
    return ret


def running(name, config_dir=None, config_files=None):
    """
    Ensure the Postfix instance runs on the configuration on disk and serves.

    A stopped Postfix is started. A running one is restarted when a
    parameter it reads only at start-up differs from the value it was
    started with, and reloaded when main.cf, master.cf or one of
    CONFIG_FILES differs from the configuration it was last proven to serve
    on (a reload owed by an earlier run that failed or was killed is paid
    here). Every start, reload and restart is proven (see the module
    documentation); if Postfix does not serve, the last known-good
    configuration is put back and the state fails.

    name
        An arbitrary name for the state.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    config_files
        Other files Postfix serves from that a reload must follow (e.g. the
        pgsql lookup table files proxymap keeps open).

    .. code-block:: yaml

        postfix:
          postfix.running:
            - config_files: [/etc/postfix/pgsql/virtual_mailbox_maps.cf]
            - watch:
              - postconf: main-cf
    """
    ret = _result(name)
    if _missing_modules():
        return _not_installed(ret)
    try:
        config_directory = None if config_dir is not None else __salt__["postconf.get"]("config_directory")
        if not __opts__["test"] and _unchecked(config_dir, config_directory):
            _check(config_dir, config_directory)
    except CommandExecutionError as exc:
        # Salt would call mod_watch next (this failure has no changes): it must not
        # reload what the check put back
        ret["skip_watch"] = True
        return _failed(ret, f"Postfix not reloaded, its configuration check failed: {exc}")
    try:
        return _converge(ret, config_dir, config_files)
    except CommandExecutionError as exc:
        return _failed(ret, str(exc))


def mod_watch(name, sfun=None, config_dir=None, config_files=None, **kwargs):
    """
    Make Postfix take the configuration a watched state changed.

    ``postfix check`` first (not in test mode: it creates missing queue
    directories), the one check of the run: on failure the main.cf and
    master.cf edits the postconf states left to it are put back
    byte-identical, this state fails and Postfix is not touched.
    Then as :py:func:`running`, with a reload even when nothing differs from
    the known-good configuration (the watched state changed something
    Postfix reads). ``sfun`` (the watching state function, always
    ``running``) and the other low-data keyword arguments Salt passes are
    not used.

    name
        The name of the watching state.

    config_dir
        Postfix configuration directory; default: Postfix's own.

    config_files
        As for :py:func:`running`.
    """
    ret = _result(name)
    if _missing_modules():
        return _not_installed(ret)
    try:
        if not __opts__["test"]:
            config_directory = None if config_dir is not None else __salt__["postconf.get"]("config_directory")
            _check(config_dir, config_directory)
    except CommandExecutionError as exc:
        return _failed(ret, f"Postfix not reloaded, its configuration check failed: {exc}")
    try:
        return _converge(ret, config_dir, config_files, watched=True)
    except CommandExecutionError as exc:
        return _failed(ret, str(exc))
