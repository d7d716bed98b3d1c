"""
Keep a daemon running by its own commands, without an init system.

Dovecot, unbound and dnsmasq daemonize and write a pid file; this state
starts them with their own command line when that pid file names no live
process, and reloads (or restarts) them when a watched state changed.

.. code-block:: yaml

    dovecot-running:
      pidfile_service.running:
        - start: [dovecot, -c, /etc/dovecot/dovecot.conf]
        - reload: [doveadm, -c, /etc/dovecot/dovecot.conf, reload]
        - pidfile: /run/dovecot/master.pid
        - watch:
          - file: /etc/dovecot/dovecot.conf
"""

import os
import signal
import subprocess
import tempfile
import time

__virtualname__ = "pidfile_service"

POLL_INTERVAL = 0.1
#: seconds a start or reload command may take (it must daemonize, not stay)
COMMAND_TIMEOUT = 60


def __virtual__():
    return __virtualname__


def _pid(pidfile):
    """The live process named by PIDFILE, or None."""
    try:
        with open(pidfile, encoding="ascii") as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _wait(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _run(argv):
    """Run ARGV; return None on success, else the command's own message.

    Not cmd.run_all: it reads the command's output through pipes until they
    close, and a daemon keeps them open for its whole life. Its output goes
    to a file instead, so only the foreground process is waited for.
    """
    with tempfile.TemporaryFile() as output:
        try:
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                  check=False, timeout=COMMAND_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if proc.returncode == 0:
            return None
        output.seek(0)
        message = output.read().decode(errors="replace").strip()
    return message or f"{argv[0]} exited with status {proc.returncode}"


def _start(name, start, pidfile, timeout):
    """Start the daemon; return (pid, None) or (None, error)."""
    error = _run(start)
    if error:
        return None, f"{name} failed to start: {error}"
    if not _wait(lambda: _pid(pidfile), timeout):
        return None, f"{name} did not write a live pid to {pidfile} within {timeout}s"
    return _pid(pidfile), None


def _stop(pid, timeout):
    """SIGTERM PID and wait until it is gone; True when it is."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    return _wait(gone, timeout)


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def running(name, start, pidfile, reload=None, timeout=15):
    """
    Ensure the daemon NAME runs: start it with START when PIDFILE names no
    live process.

    name
        What to call the daemon in comments.
    start
        Its start command as an argument list; it must daemonize.
    pidfile
        The pid file the daemon writes.
    reload
        Argument list that makes the running daemon re-read its
        configuration (used on ``watch``); None restarts it instead.
    timeout
        Seconds to wait for the pid file after a start, and for the process
        to end on a restart.
    """
    ret = _ret(name)
    pid = _pid(pidfile)
    if pid:
        ret["comment"] = f"{name} is running (pid {pid})"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be started", changes={"pid": {"old": None, "new": "started"}})
        return ret
    new_pid, error = _start(name, start, pidfile, timeout)
    if error:
        ret.update(result=False, comment=error)
        return ret
    ret.update(comment=f"{name} started", changes={"pid": {"old": None, "new": new_pid}})
    return ret


def dead(name, pidfile, timeout=15):
    """
    Ensure the daemon whose pid PIDFILE names is not running (SIGTERM).

    name
        What to call the daemon in comments.
    pidfile
        The pid file the daemon wrote.
    timeout
        Seconds to wait for the process to end.
    """
    ret = _ret(name)
    pid = _pid(pidfile)
    if not pid:
        ret["comment"] = f"{name} is not running"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be stopped", changes={"pid": {"old": pid, "new": None}})
        return ret
    if not _stop(pid, timeout):
        ret.update(result=False, comment=f"{name} (pid {pid}) did not stop within {timeout}s")
        return ret
    ret.update(comment=f"{name} stopped", changes={"pid": {"old": pid, "new": None}})
    return ret


def _restart(name, start, pidfile, pid, timeout):
    """Stop PID, start the daemon again; return (new pid, None) or (None, error)."""
    if not _stop(pid, timeout):
        return None, f"{name} (pid {pid}) did not stop within {timeout}s"
    return _start(name, start, pidfile, timeout)


def mod_watch(name, start, pidfile, reload=None, timeout=15, **kwargs):
    """
    A watched state changed: reload the daemon with RELOAD, or restart it
    when it has no reload command; start it when it is not running.
    """
    pid = _pid(pidfile)
    if not pid:
        return running(name, start, pidfile, reload=reload, timeout=timeout)
    ret = _ret(name)
    action = "reloaded" if reload else "restarted"
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be {action}", changes={action: True})
        return ret
    if reload:
        error = _run(reload)
        error = error and f"{name} failed to reload: {error}"
        changes = {"reloaded": True}
    else:
        new_pid, error = _restart(name, start, pidfile, pid, timeout)
        changes = {"pid": {"old": pid, "new": new_pid}}
    if error:
        ret.update(result=False, comment=error)
        return ret
    ret.update(comment=f"{name} {action}", changes=changes)
    return ret
