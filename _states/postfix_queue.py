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
Postfix again if it ran before. The old directory is kept untouched (remove
it by hand once satisfied). On failure the old queue directory is restored
and Postfix restarted there.
"""

import os
import shutil
import tempfile

from salt.exceptions import CommandExecutionError

__virtualname__ = "postfix_queue"


def __virtual__():
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
    """Copy the queue SOURCE into TARGET; raise unless every file arrived intact."""
    os.makedirs(target, exist_ok=True)
    _run(["cp", "-a", "--", os.path.join(source, "."), target])
    originals = _queue_files(source)
    copied = _queue_files(target)
    missing = sorted(path for path, size in originals.items() if copied.get(path) != size)
    if missing:
        raise CommandExecutionError(f"queue copy to {target} is incomplete: {', '.join(missing[:10])}")
    return len(originals)


def _switch(target, config_dir):
    """Point queue_directory at TARGET and let Postfix fix the permissions there."""
    __salt__["postconf.set"]({"queue_directory": target}, config_dir=config_dir)
    argv = ["postfix", *(["-c", config_dir] if config_dir else []), "set-permissions"]
    _run(argv)


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
        _run(["postsuper", "-c", scratch])


def _default_config_dir():
    return __salt__["postconf.get"]("config_directory")


def _rollback(current, config_dir, was_running):
    """Back to the old queue directory, Postfix running as before."""
    __salt__["postconf.set"]({"queue_directory": current}, config_dir=config_dir)
    if was_running:
        __salt__["postfix.start"](config_dir=config_dir)


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
    __salt__["postfix.stop"](config_dir=config_dir)
    try:
        files_copied = _copy(current, target)
        _switch(target, config_dir)
        _rename_to_inodes(config_dir)
        if was_running:
            __salt__["postfix.start"](config_dir=config_dir)
    except CommandExecutionError as exc:
        _rollback(current, config_dir, was_running)
        ret.update(result=False, comment=f"queue not moved, Postfix back on {current}: {exc}")
        return ret
    changes["files"] = {"old": None, "new": files_copied}
    ret.update(changes=changes, comment=f"the queue moved from {current} to {target} ({files_copied} files copied)")
    return ret
