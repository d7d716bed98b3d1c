"""
Move a Postfix instance's queue directory without losing mail.

.. code-block:: yaml

    /srv/fast/postfix:
      postfix_queue.moved:
        - config_dir: /etc/postfix

When ``queue_directory`` differs from NAME: stop Postfix (if it runs), copy
the queue with owners, modes and times (``cp -a``), check that every queue
file arrived, point ``queue_directory`` at NAME, let ``postfix
set-permissions`` fix ownership and create what is missing, rename the
queue files after their new inode numbers (``postsuper``), and start
Postfix again if it ran before. Mail submitted with sendmail(1) while
Postfix was stopped lands in the old maildrop: once queue_directory points
at NAME, those files are moved into the new maildrop. Apart from them the
old directory is kept untouched (remove it by hand once satisfied). On any
failure queue_directory is set back and Postfix started on the old queue.
"""

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


def __virtual__():
    missing = [function for function in NEEDS if function not in __salt__]
    if missing:
        return (False, f"the postfix_queue state needs the postconf and postfix execution modules "
                       f"(is Postfix installed?): {', '.join(missing)} not available")
    return __virtualname__


def _queue_files(directory):
    """Relative path -> size of every regular file under DIRECTORY."""
    files = {}
    for root, _, names in os.walk(directory):
        for filename in names:
            path = os.path.join(root, filename)
            if os.path.isfile(path) and not os.path.islink(path):
                files[os.path.relpath(path, directory)] = os.path.getsize(path)
    return files


def _run(argv):
    result = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)
    if result["retcode"] != 0:
        raise CommandExecutionError(f"{' '.join(argv)} failed: {(result['stderr'] or result['stdout']).strip()}")


def _copy(source, target):
    """Copy the queue SOURCE into TARGET; raise unless every file arrived intact.
    Returns the files copied (relative path -> size)."""
    os.makedirs(target, exist_ok=True)
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


def _move_late_mail(source, target, copied):
    """Move the maildrop files postdrop wrote into SOURCE after the copy (not in
    COPIED) to TARGET's maildrop, owner and mode kept; return how many.

    All are copied before any is removed: a failure leaves them in SOURCE.
    """
    late = sorted(set(_queue_files(os.path.join(source, MAILDROP))) - {
        os.path.relpath(path, MAILDROP) for path in copied if path.startswith(MAILDROP + os.sep)})
    originals = [os.path.join(source, MAILDROP, filename) for filename in late]
    for original, filename in zip(originals, late):
        copy = os.path.join(target, MAILDROP, filename)
        shutil.copy2(original, copy)
        status = os.stat(original)
        os.chown(copy, status.st_uid, status.st_gid)
    for original in originals:
        os.unlink(original)
    return len(late)


def _rename_to_inodes(config_dir):
    """Rename the copied queue files to their new inode numbers (``postsuper``).

    ``postfix start`` does this too, but postsuper drops to the mail owner
    before it logs a rename and, with Postfix down, writes straight to
    maillog_file, which only root may: the start fails. So it runs here
    first, from a copy of main.cf that logs to syslog.
    """
    main_cf = os.path.join(config_dir or _default_config_dir(), "main.cf")
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "main.cf")
        shutil.copyfile(main_cf, copy)
        with open(copy, "a", encoding="utf-8") as handle:
            handle.write("\nmaillog_file =\n")
        # An old file: Postfix tools wait for a just-written main.cf to settle.
        stat = os.stat(main_cf)
        os.utime(copy, (stat.st_atime, stat.st_mtime))
        __salt__["postfix.repair_queue"](config_dir=scratch)


def _default_config_dir():
    return __salt__["postconf.get"]("config_directory")


def _rollback(current, config_dir, was_running):
    """Back to the old queue directory, Postfix running as before; return what failed, or None."""
    try:
        __salt__["postconf.set"]({"queue_directory": current}, config_dir=config_dir)
    except CommandExecutionError as exc:
        return f"queue_directory could not be set back to {current}: {exc}"
    if not was_running:
        return None
    try:
        __salt__["postfix.start"](config_dir=config_dir)
    except CommandExecutionError as exc:
        return f"Postfix did not start again on {current}: {exc}"
    return None


def _move(current, target, config_dir, was_running, moved_files):
    """Stop Postfix, move the queue from CURRENT to TARGET, start Postfix.

    Fills MOVED_FILES with {"files": copied, "late": moved from the old maildrop}.
    The late files are moved before ``postsuper`` renames queue files after their inodes.
    """
    __salt__["postfix.stop"](config_dir=config_dir)
    copied = _copy(current, target)
    moved_files["files"] = len(copied)
    _switch(target, config_dir)
    moved_files["late"] = _move_late_mail(current, target, copied)
    _rename_to_inodes(config_dir)
    if was_running:
        __salt__["postfix.start"](config_dir=config_dir)


def _failure(exc, current, target, trouble, late):
    """The comment of a move that failed with EXC (rollback TROUBLE, LATE files already moved)."""
    if trouble:
        comment = f"queue not moved ({exc}) and {trouble}"
    else:
        comment = f"queue not moved, Postfix back on {current}: {exc}"
    if late:
        comment += f"; {late} messages submitted during the move wait in {target}/{MAILDROP}"
    return comment


def moved(name, config_dir=None):
    """
    Ensure Postfix's queue_directory is NAME, moving the queue there if not.

    name
        The absolute path of the new queue directory (it may be a mount
        point; it is created when missing).
    config_dir
        The Postfix instance (``postconf -c``); None means Postfix's own.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if not os.path.isabs(name):
        ret.update(result=False, comment=f"queue directory {name!r} is not an absolute path")
        return ret
    target = os.path.normpath(name)
    current = __salt__["postconf.get"]("queue_directory", config_dir=config_dir)
    if os.path.realpath(current) == os.path.realpath(target):
        ret["comment"] = f"Postfix's queue is already in {target}"
        return ret
    changes = {"queue_directory": {"old": current, "new": target}}
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"the queue would be moved from {current} to {target}")
        return ret

    was_running = __salt__["postfix.status"](config_dir=config_dir)
    counts = {"files": 0, "late": 0}
    try:
        _move(current, target, config_dir, was_running, counts)
    except (CommandExecutionError, OSError) as exc:
        log.error("postfix_queue: moving the queue to %s failed: %s", target, exc)
        trouble = _rollback(current, config_dir, was_running)
        ret.update(result=False, comment=_failure(exc, current, target, trouble, counts["late"]))
        return ret
    changes["files"] = {"old": None, "new": counts["files"]}
    comment = f"the queue moved from {current} to {target} ({counts['files']} files copied"
    if counts["late"]:
        changes["late_maildrop_files"] = {"old": None, "new": counts["late"]}
        comment += f", {counts['late']} submitted meanwhile moved from the old maildrop"
    ret.update(changes=changes, comment=comment + ")")
    return ret
