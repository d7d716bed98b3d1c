"""
Move a Postfix instance's queue directory without losing mail, without
delivering any of it twice, and so that a run killed at any point is
finished by the next one.

.. code-block:: yaml

    /srv/fast/postfix:
      postfix_queue.moved:
        - config_dir: /etc/postfix

When ``queue_directory`` differs from NAME: stop Postfix (if it runs), copy
the queue with owners, modes and times (``cp -a``), check that every queue
file arrived, point ``queue_directory`` at NAME, let ``postfix
set-permissions`` fix ownership and create what is missing, move the mail
sendmail(1) dropped into the old maildrop meanwhile, rename the queue files
after their new inode numbers (``postsuper``), start Postfix again if it
ran before, and retire the old queue.

Where the queue may go (``target_allowed`` checks it, also on its own before
a filesystem is mounted there): an absolute path that is not ``/``, a system
directory (SYSTEM_DIRECTORIES, anything under /proc, /sys, /dev, /run,
/tmp), an ancestor of the configuration directory or of the current queue,
inside the current queue or the configuration directory; and that is
missing, empty (``lost+found`` aside) or a Postfix queue holding no queued
mail (such as a queue this state retired).

Retiring: once Postfix runs on the new queue, the old queue's message and
log directories (maildrop, incoming, active, deferred, hold, ..., defer,
bounce) are renamed into ``<old>/retired-queue-<time>/``. Postfix never
reads them again, so moving the queue back there later does not deliver
the old copies a second time; nothing is deleted (remove the retired
directory by hand once satisfied).

Resuming: before stopping Postfix the state writes a marker,
``<config_dir>/postfix-queue-move.json`` (source, target, whether Postfix
ran), and removes it only when everything is done. A run that finds the
marker finishes that move first: while queue_directory still names the
source it throws the partial copy away and copies again (Postfix never ran
on it); once queue_directory names the target it redoes the remaining
steps, each safe to repeat, and starts Postfix if it ran before the kill.

On a failure (not a kill), queue_directory is set back, the mail moved from
the old maildrop is put back there, the copy is removed and Postfix started
on the old queue.
"""

import datetime
import json
import logging
import os
import shutil
import tempfile

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "postfix_queue"

NEEDS = ("postconf.get", "postconf.set", "postfix.status", "postfix.start", "postfix.stop",
         "postfix.set_permissions", "postfix.repair_queue")
MAILDROP = "maildrop"
MARKER = "postfix-queue-move.json"
#: never a queue directory: their contents are not Postfix's
SYSTEM_DIRECTORIES = (
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
    "/usr/libexec", "/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/backups", "/var/cache", "/var/lib",
    "/var/local", "/var/log", "/var/mail", "/var/opt", "/var/run", "/var/spool", "/var/tmp",
)
#: nor anything below these (virtual or volatile filesystems)
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/run", "/tmp")
#: the queue's message directories and the per-message logs: what retiring renames away
QUEUE_MAIL = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt", "saved",
              "bounce", "defer", "trace", "flush")
#: the directories that hold queued messages
MESSAGE_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold", "corrupt", "saved")
#: what else a Postfix queue directory holds (chroot copies included)
QUEUE_OTHER = ("pid", "private", "public", "dev", "etc", "lib", "lib64", "usr", "lost+found")
RETIRED_PREFIX = "retired-queue-"


def __virtual__():
    # Always loadable: on a bare minion Postfix (and with it the postconf and
    # postfix execution modules) arrives later in the same run.
    return __virtualname__


def _not_installed(ret, would):
    """The execution modules are missing: predict WOULD in test mode, fail otherwise."""
    missing = [function for function in NEEDS if function not in __salt__]
    if not missing:
        return None
    if __opts__["test"]:
        ret.update(result=None, comment=f"{would} once Postfix is installed")
    else:
        ret.update(result=False, comment=f"the postfix_queue state needs the postconf and postfix execution "
                                         f"modules (is Postfix installed?): {', '.join(missing)} not available")
    return ret


def _inside(path, directory):
    """PATH is DIRECTORY or below it (both real paths)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _files_under(directory):
    for root, _, names in os.walk(directory):
        for filename in names:
            yield os.path.join(root, filename)


def _refusal(target, current, config_dir, marker):
    """Why TARGET cannot be the queue directory, or None. MARKER: the interrupted move, if any."""
    if not os.path.isabs(target):
        return f"queue directory {target!r} is not an absolute path"
    real = os.path.realpath(target)
    if real in SYSTEM_DIRECTORIES or any(_inside(real, tree) for tree in SYSTEM_TREES):
        return f"queue directory {target} is a system directory"
    real_current = os.path.realpath(current)
    if real == real_current:
        return None
    real_config = os.path.realpath(config_dir)
    for name, other in (("the configuration directory", real_config), ("the current queue", real_current)):
        if _inside(other, real):
            return f"queue directory {target} holds {name} ({other})"
        if _inside(real, other):
            return f"queue directory {target} is inside {name} ({other})"
    if not os.path.lexists(target):
        return None
    if not os.path.isdir(target) or os.path.islink(target):
        return f"queue directory {target} exists and is not a directory"
    if marker and os.path.realpath(marker["target"]) == real:
        return None  # the partial copy of the interrupted move
    foreign = sorted(name for name in os.listdir(target)
                     if name not in QUEUE_MAIL + QUEUE_OTHER and not name.startswith(RETIRED_PREFIX))
    if foreign:
        return (f"queue directory {target} is not empty and not a Postfix queue "
                f"(it holds {', '.join(foreign[:5])}): choose an empty or missing directory")
    queued = [path for name in MESSAGE_QUEUES for path in _files_under(os.path.join(target, name))]
    if queued:
        return (f"queue directory {target} still holds {len(queued)} queued files of an old queue "
                f"(such as {os.path.relpath(queued[0], target)}), which would be delivered again: "
                "deliver or remove them first")
    return None


# --- the marker -------------------------------------------------------------


def _config_dir(config_dir):
    return config_dir or __salt__["postconf.get"]("config_directory")


def _marker_path(config_dir):
    return os.path.join(config_dir, MARKER)


def _read_marker(config_dir):
    try:
        with open(_marker_path(config_dir), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


def _write_marker(config_dir, marker):
    """Replace the marker atomically (a kill leaves the old one or the new one)."""
    path = _marker_path(config_dir)
    with tempfile.NamedTemporaryFile("w", dir=config_dir, prefix=f".{MARKER}.", delete=False,
                                     encoding="utf-8") as handle:
        json.dump(marker, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(handle.name, 0o600)
    os.replace(handle.name, path)


def _remove_marker(config_dir):
    try:
        os.unlink(_marker_path(config_dir))
    except FileNotFoundError:
        pass


# --- the steps, each safe to repeat ------------------------------------------


def _queue_files(directory):
    """Relative path -> size of every regular file under DIRECTORY."""
    files = {}
    for path in _files_under(directory):
        if os.path.isfile(path) and not os.path.islink(path):
            files[os.path.relpath(path, directory)] = os.path.getsize(path)
    return files


def _run(argv):
    result = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)
    if result["retcode"] != 0:
        raise CommandExecutionError(f"{' '.join(argv)} failed: {(result['stderr'] or result['stdout']).strip()}")


def _remove_copy(source, target):
    """Remove from TARGET what a copy of SOURCE put there (the target held no queued mail before)."""
    for name in os.listdir(source):
        path = os.path.join(target, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def _copy(source, target):
    """Copy the queue SOURCE into TARGET (a partial copy there is thrown away
    first); raise unless every file arrived intact. Returns the files copied."""
    os.makedirs(target, exist_ok=True)
    _remove_copy(source, target)
    originals = _queue_files(source)
    _run(["cp", "-a", "--", os.path.join(source, "."), target])
    copied = _queue_files(target)
    missing = sorted(path for path, size in originals.items() if copied.get(path) != size)
    if missing:
        raise CommandExecutionError(f"queue copy to {target} is incomplete: {', '.join(missing[:10])}")
    return originals


def _switch(target, config_dir):
    """Point queue_directory at TARGET and let Postfix fix the permissions there."""
    __salt__["postconf.set"]({"queue_directory": target}, config_dir=config_dir)
    __salt__["postfix.set_permissions"](config_dir=config_dir)


def _move_maildrop_files(source, target, names):
    """Move the files NAMES from SOURCE's maildrop to TARGET's, owner and mode
    kept; all are copied before any is removed. Returns how many moved."""
    pairs = [(os.path.join(source, MAILDROP, name), os.path.join(target, MAILDROP, name)) for name in names]
    pairs = [(original, copy) for original, copy in pairs if os.path.exists(original)]
    for original, copy in pairs:
        shutil.copy2(original, copy)
        status = os.stat(original)
        os.chown(copy, status.st_uid, status.st_gid)
    for original, _ in pairs:
        os.unlink(original)
    return len(pairs)


def _late_mail(source, copied_maildrop):
    """The files postdrop wrote into SOURCE's maildrop after the copy."""
    return sorted(set(_queue_files(os.path.join(source, MAILDROP))) - set(copied_maildrop))


def _rename_to_inodes(config_dir):
    """Rename the copied queue files to their new inode numbers (``postsuper``).

    ``postfix start`` does this too, but postsuper drops to the mail owner
    before it logs a rename and, with Postfix down, writes straight to
    maillog_file, which only root may: the start fails. So it runs here
    first, from a copy of main.cf that logs to syslog.
    """
    main_cf = os.path.join(config_dir, "main.cf")
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "main.cf")
        shutil.copyfile(main_cf, copy)
        with open(copy, "a", encoding="utf-8") as handle:
            handle.write("\nmaillog_file =\n")
        # An old file: Postfix tools wait for a just-written main.cf to settle.
        stat = os.stat(main_cf)
        os.utime(copy, (stat.st_atime, stat.st_mtime))
        __salt__["postfix.repair_queue"](config_dir=scratch)


def _retire(source, stamp):
    """Rename SOURCE's message and log directories into SOURCE/retired-queue-STAMP.
    Returns the retired directory."""
    retired = os.path.join(source, RETIRED_PREFIX + stamp)
    os.makedirs(retired, mode=0o700, exist_ok=True)
    for name in QUEUE_MAIL:
        path = os.path.join(source, name)
        if os.path.lexists(path):
            os.rename(path, os.path.join(retired, name))
    return retired


def _copy_phase(marker, config_dir):
    """Stop Postfix, copy the queue, record what was copied. Postfix never ran on the copy."""
    __salt__["postfix.stop"](config_dir=config_dir)
    copied = _copy(marker["source"], marker["target"])
    marker["files"] = len(copied)
    marker["copied_maildrop"] = sorted(os.path.relpath(path, MAILDROP) for path in copied
                                       if path.startswith(MAILDROP + os.sep))
    _write_marker(config_dir, marker)


def _finish(marker, config_dir):
    """The steps after the copy; returns how many late maildrop files moved.
    The late files are moved before ``postsuper`` renames queue files after their inodes."""
    source, target = marker["source"], marker["target"]
    _switch(target, config_dir)
    late = _move_maildrop_files(source, target, _late_mail(source, marker["copied_maildrop"]))
    marker["late"] = marker.get("late", 0) + late
    _write_marker(config_dir, marker)
    _rename_to_inodes(config_dir)
    if marker["was_running"]:
        __salt__["postfix.start"](config_dir=config_dir)


def _retire_phase(marker, config_dir):
    """Postfix runs on the new queue: move what postdrop still wrote into the old
    maildrop (pickup takes it in from the new one), retire the old queue, done."""
    source, target = marker["source"], marker["target"]
    marker["late"] += _move_maildrop_files(source, target, _late_mail(source, marker["copied_maildrop"]))
    _write_marker(config_dir, marker)
    marker["retired"] = _retire(source, marker["stamp"])
    _remove_marker(config_dir)


def _rollback(marker, config_dir):
    """Back to the old queue, Postfix running as before; return what failed, or None."""
    source, target = marker["source"], marker["target"]
    try:
        __salt__["postconf.set"]({"queue_directory": source}, config_dir=config_dir)
    except CommandExecutionError as exc:
        return f"queue_directory could not be set back to {source}: {exc}"
    try:
        if marker.get("copied_maildrop") is not None:
            late = sorted(set(_queue_files(os.path.join(target, MAILDROP))) - set(marker["copied_maildrop"]))
            _move_maildrop_files(target, source, late)
        _remove_copy(source, target)
    except OSError as exc:
        return f"the copy in {target} could not be removed: {exc}"
    _remove_marker(config_dir)
    if marker["was_running"]:
        try:
            __salt__["postfix.start"](config_dir=config_dir)
        except CommandExecutionError as exc:
            return f"Postfix did not start again on {source}: {exc}"
    return None


def _new_marker(current, target, config_dir):
    return {"source": current, "target": target, "was_running": __salt__["postfix.status"](config_dir=config_dir),
            "stamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")}


def _report(ret, marker, resumed):
    source, target = marker["source"], marker["target"]
    ret["changes"]["queue_directory"] = {"old": source, "new": target}
    ret["changes"]["files"] = {"old": None, "new": marker["files"]}
    comment = f"the queue moved from {source} to {target} ({marker['files']} files copied"
    if marker.get("late"):
        ret["changes"]["late_maildrop_files"] = {"old": None, "new": marker["late"]}
        comment += f", {marker['late']} submitted meanwhile moved from the old maildrop"
    comment += f"; the old queue retired into {marker['retired']}"
    if resumed:
        ret["changes"]["resumed"] = {"old": None, "new": True}
        comment += "; an interrupted move finished"
    ret["comment"] = comment + ")"


def target_allowed(name, config_dir=None):
    """
    Ensure NAME may become Postfix's queue directory (see the module
    documentation); changes nothing. Require it before mounting a
    filesystem on NAME.

    name
        The absolute path of the new queue directory.
    config_dir
        The Postfix instance (``postconf -c``); None means Postfix's own.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if _not_installed(ret, f"{name} would be checked"):
        return ret
    config_dir = _config_dir(config_dir)
    current = __salt__["postconf.get"]("queue_directory", config_dir=config_dir)
    refusal = _refusal(name, current, config_dir, _read_marker(config_dir))
    if refusal:
        ret.update(result=False, comment=refusal)
    else:
        ret["comment"] = f"{name} may hold Postfix's queue"
    return ret


def moved(name, config_dir=None):
    """
    Ensure Postfix's queue_directory is NAME, moving the queue there if not
    (and first finishing a move that a kill interrupted).

    name
        The absolute path of the new queue directory (it may be a mount
        point; it is created when missing).
    config_dir
        The Postfix instance (``postconf -c``); None means Postfix's own.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if _not_installed(ret, f"the queue would be moved to {name}"):
        if ret["result"] is None:
            ret["changes"] = {"queue_directory": {"old": None, "new": name}}
        return ret
    config_dir = _config_dir(config_dir)
    marker = _read_marker(config_dir)
    current = __salt__["postconf.get"]("queue_directory", config_dir=config_dir)
    if marker and current not in (marker["source"], marker["target"]):
        ret.update(result=False, comment=(
            f"a queue move from {marker['source']} to {marker['target']} was interrupted, but queue_directory "
            f"is now {current}: check both by hand, then remove {_marker_path(config_dir)}"))
        return ret
    refusal = _refusal(name, current, config_dir, marker)
    if refusal:
        ret.update(result=False, comment=refusal)
        return ret
    target = os.path.normpath(name)
    same = os.path.realpath(current) == os.path.realpath(target)
    if same and not marker:
        ret["comment"] = f"Postfix's queue is already in {target}"
        return ret
    if __opts__["test"]:
        if marker:
            ret["changes"]["resumed"] = {"old": None, "new": True}
        ret["changes"]["queue_directory"] = {"old": marker["source"] if same else current, "new": target}
        ret.update(result=None, comment=f"the queue would be moved from {ret['changes']['queue_directory']['old']} "
                                        f"to {target}")
        return ret

    resumed = marker is not None
    if marker and current == marker["source"] and os.path.realpath(marker["target"]) != os.path.realpath(target):
        # interrupted before the switch, and pillar now wants another place: give that move up
        abandoned = dict(marker, copied_maildrop=None)
        trouble = _rollback(abandoned, config_dir)
        if trouble:
            ret.update(result=False, comment=f"an interrupted queue move to {marker['target']} could not be "
                                             f"given up: {trouble}")
            return ret
        marker, resumed = None, False
    if marker is None:
        marker = _new_marker(current, target, config_dir)
        _write_marker(config_dir, marker)
    try:
        if current == marker["source"]:
            _copy_phase(marker, config_dir)
        _finish(marker, config_dir)
    except (CommandExecutionError, OSError) as exc:
        log.error("postfix_queue: moving the queue to %s failed: %s", marker["target"], exc)
        trouble = _rollback(marker, config_dir)
        if trouble:
            ret.update(result=False, comment=f"queue not moved ({exc}) and {trouble}")
        else:
            ret.update(result=False, comment=f"queue not moved, Postfix back on {marker['source']}: {exc}")
        return ret
    try:
        _retire_phase(marker, config_dir)
    except OSError as exc:
        # Postfix runs on the new queue: no way back, the next run retires the old one
        ret.update(result=False, changes={"queue_directory": {"old": marker["source"], "new": marker["target"]}},
                   comment=f"the queue moved to {marker['target']}, but the old queue in {marker['source']} "
                           f"could not be retired ({exc}); the next run retries")
        return ret
    _report(ret, marker, resumed)
    if os.path.realpath(marker["target"]) != os.path.realpath(target):
        # the interrupted move went elsewhere; now the move pillar asks for
        again = moved(name, config_dir=config_dir)
        again["changes"] = {"interrupted_move": ret["changes"], **again["changes"]}
        return again
    return ret
