"""
Keep a daemon running by its own commands, without an init system.

Dovecot, unbound and dnsmasq daemonize and write a pid file; this state
starts them with their own command line when that pid file names no live
process running the daemon's program, and reloads (or restarts) them when a
watched state changed. A stale pid file whose PID now belongs to another
program counts as "not running" (that process is never signalled), and so
does a zombie. With ``probe``, the daemon counts as running only once that
command succeeds (e.g. a DNS query to the resolver just started).

With ``config_files``, the state keeps a copy of those files (in the
minion's cache directory, readable by root only) each time the daemon was
proven to run on them. A running daemon whose files differ from that copy
is owed a reload (or restart) and gets it, even when the run that changed
them failed or was killed before it could reload. If a start, reload or
restart does not end with the daemon running and answering the probe, the
copy is put back, the daemon is made to take it, and the state fails with
the daemon's own message.

.. code-block:: yaml

    dovecot-running:
      pidfile_service.running:
        - start: [dovecot, -c, /etc/dovecot/dovecot.conf]
        - reload: [doveadm, -c, /etc/dovecot/dovecot.conf, reload]
        - pidfile: /run/dovecot/master.pid
        - watch:
          - file: /etc/dovecot/dovecot.conf
"""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import salt.utils.files
import salt.utils.path

__virtualname__ = "pidfile_service"

POLL_INTERVAL = 0.1
#: seconds a start or reload command may take (it must daemonize, not stay)
COMMAND_TIMEOUT = 60
#: how /proc/PID/exe names a binary that was replaced since the process started
DELETED = " (deleted)"
KNOWN_GOOD_DIR = ("pidfile_service", "known-good")


def __virtual__():
    if not os.path.isdir("/proc/self"):
        return (False, "pidfile_service reads /proc to tell a daemon from a stale pid file: no /proc here")
    return __virtualname__


def _program(executable):
    """The real path of EXECUTABLE (a name looked up on PATH, or a path)."""
    return os.path.realpath(salt.utils.path.which(executable) or executable)


def _runs(pid, program):
    """True if PID is a live process (not a zombie) running PROGRAM.

    A pid file outlives its daemon, and the kernel hands its PID to the next
    process: only the executable tells the daemon from a stranger.
    """
    try:
        with salt.utils.files.fopen(f"/proc/{pid}/stat", "r") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        running = os.readlink(f"/proc/{pid}/exe")
    except (OSError, IndexError):
        return False
    # an upgraded package leaves the daemon running its removed binary
    return state != "Z" and running.removesuffix(DELETED) == program


def _pid(pidfile, program):
    """The PID in PIDFILE if that process is alive and runs PROGRAM, else None."""
    try:
        with salt.utils.files.fopen(pidfile, "r") as handle:
            pid = int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _runs(pid, program) else None


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


def _connects(addresses):
    """None if every ``[host, port]`` in ADDRESSES accepts a TCP connection, else why not."""
    for host, port in addresses or ():
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
        except OSError as exc:
            return f"nothing answers on {host}:{port}: {exc}"
    return None


def _answering(name, probe, timeout, connect=None):
    """None if PROBE succeeds and every CONNECT address accepts a connection within
    TIMEOUT seconds (at once without one), else why not."""
    if not probe and not connect:
        return None
    errors = []

    def answers():
        errors[:] = [_connects(connect) or (_run(probe) if probe else None)]
        return errors[0] is None

    if _wait(answers, timeout):
        return None
    what = " ".join(probe) if probe else "connections"
    return f"{name} runs but does not answer {what}: {errors[0]}"


def _start(name, daemon):
    """Start the daemon; return (its pid or None, None or the error)."""
    error = _run(daemon["start"])
    if error:
        return None, f"{name} failed to start: {error}"
    pidfile, timeout = daemon["pidfile"], daemon["timeout"]
    if not _wait(lambda: _pid(pidfile, daemon["program"]), timeout):
        return None, f"{name} did not write the pid of a live {daemon['program']} to {pidfile} within {timeout}s"
    return _pid(pidfile, daemon["program"]), _answering(name, daemon["probe"], timeout, daemon["connect"])


def _stop(pid, program, timeout):
    """SIGTERM PID and wait until it is gone; True when it is."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return _wait(lambda: not _runs(pid, program), timeout)


def _daemon(start, pidfile, executable, probe, timeout, config_files=None, connect=None):
    """The settings every function here passes around, with the program resolved."""
    return {"start": start, "pidfile": pidfile, "program": _program(executable or start[0]), "probe": probe,
            "timeout": timeout, "config_files": list(config_files or ()), "connect": list(connect or ())}


def _known_good_dir(pidfile):
    """Where the copy of the configuration the daemon of PIDFILE last ran on is kept."""
    return os.path.join(__opts__["cachedir"], *KNOWN_GOOD_DIR, hashlib.sha256(pidfile.encode()).hexdigest()[:16])


def _copy_name(path):
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def _read(path):
    try:
        with salt.utils.files.fopen(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _owed(pidfile, config_files):
    """The CONFIG_FILES that differ from the copy the daemon was last proven to run on."""
    directory = _known_good_dir(pidfile)
    return [path for path in config_files or () if _read(path) != _read(os.path.join(directory, _copy_name(path)))]


def _keep_known_good(pidfile, config_files):
    """The daemon runs and answers on CONFIG_FILES: keep a copy of them."""
    if not config_files:
        return
    directory = _known_good_dir(pidfile)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for path in config_files:
        target = os.path.join(directory, _copy_name(path))
        if os.path.exists(path):
            shutil.copy2(path, target + ".new")
            os.replace(target + ".new", target)


def _put_back_known_good(pidfile, config_files):
    """Put the kept copies of the CONFIG_FILES that differ back; return their paths."""
    directory = _known_good_dir(pidfile)
    restored = []
    for path in _owed(pidfile, config_files):
        copy = os.path.join(directory, _copy_name(path))
        if os.path.exists(copy):
            shutil.copy2(copy, path + ".salt-restore")
            os.replace(path + ".salt-restore", path)
            restored.append(path)
    return restored


def _taken(name, daemon, take):
    """Run TAKE (a reload, restart or start: returns (changes, error)); keep the files
    as known-good if the daemon then runs and answers, else put the known-good ones
    back and make the daemon take those. Returns (changes, error)."""
    changes, error = take()
    if error is None:
        _keep_known_good(daemon["pidfile"], daemon["config_files"])
        return changes, None
    restored = _put_back_known_good(daemon["pidfile"], daemon["config_files"])
    if not restored:
        return changes, error
    pid = _pid(daemon["pidfile"], daemon["program"])
    changes, again = _restart(name, daemon, pid) if pid else _start_changes(name, daemon)
    if again:
        return changes, f"{error}; on the last configuration it ran on, too: {again}"
    return changes, f"{error}. {', '.join(restored)} put back as {name} last ran on them, and it runs on those"


def _start_changes(name, daemon):
    new_pid, error = _start(name, daemon)
    return ({"pid": {"old": None, "new": new_pid}} if new_pid else {}), error


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _started(ret, name, daemon):
    changes, error = _taken(name, daemon, lambda: _start_changes(name, daemon))
    ret.update(result=error is None, comment=error or f"{name} started", changes=changes)
    return ret


def _take_changes(ret, name, daemon, reload, pid, why):
    """Reload (or restart) the running daemon PID for WHY, proven; report into RET."""
    action = "reloaded" if reload else "restarted"
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be {action}: {why}", changes={action: True})
        return ret
    changes, error = _taken(name, daemon, lambda: _reload(name, daemon, reload) if reload else _restart(name, daemon, pid))
    ret.update(result=error is None, comment=error or f"{name} {action}: {why}", changes=changes)
    return ret


def running(name, start, pidfile, reload=None, executable=None, probe=None, timeout=15, config_files=None,
            connect=None):
    """
    Ensure the daemon NAME runs: start it with START when PIDFILE names no
    live process running its program.

    name
        What to call the daemon in comments.
    start
        Its start command as an argument list; it must daemonize.
    pidfile
        The pid file the daemon writes.
    reload
        Argument list that makes the running daemon re-read its
        configuration (used on ``watch``); None restarts it instead.
    executable
        The daemon's program (a name looked up on PATH, or a path); the
        process a pid file names must run it. Default: ``start[0]``.
    probe
        Argument list that succeeds once the daemon serves (e.g. a query to
        it). After a start, reload or restart it is retried for up to
        TIMEOUT seconds; on a daemon already running it is run once. The
        state fails while it fails.
    timeout
        Seconds to wait for the pid file (and the probe) after a start, and
        for the process to end on a restart.
    config_files
        The daemon's configuration files: a running daemon is reloaded
        (restarted) when they differ from the ones it was last proven to
        run on (see the module documentation).
    connect
        ``[host, port]`` pairs the daemon listens on: each must accept a
        connection, as PROBE must succeed.
    """
    ret = _ret(name)
    daemon = _daemon(start, pidfile, executable, probe, timeout, config_files, connect)
    pid = _pid(pidfile, daemon["program"])
    owed = _owed(pidfile, daemon["config_files"]) if pid else []
    if owed:
        return _take_changes(ret, name, daemon, reload, pid, f"{', '.join(owed)} changed since it last took them")
    if pid:
        error = _answering(name, probe, 0, connect)
        ret.update(result=error is None, comment=error or f"{name} is running (pid {pid})")
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be started", changes={"pid": {"old": None, "new": "started"}})
        return ret
    return _started(ret, name, daemon)


def dead(name, pidfile, executable=None, timeout=15):
    """
    Ensure the daemon whose pid PIDFILE names is not running (SIGTERM).

    name
        What to call the daemon in comments.
    pidfile
        The pid file the daemon wrote.
    executable
        The daemon's program (a name looked up on PATH, or a path); a
        process that runs anything else is left alone. Default: NAME.
    timeout
        Seconds to wait for the process to end.
    """
    ret = _ret(name)
    program = _program(executable or name)
    pid = _pid(pidfile, program)
    if not pid:
        ret["comment"] = f"{name} is not running"
        return ret
    if __opts__["test"]:
        ret.update(result=None, comment=f"{name} would be stopped", changes={"pid": {"old": pid, "new": None}})
        return ret
    if not _stop(pid, program, timeout):
        ret.update(result=False, comment=f"{name} (pid {pid}) did not stop within {timeout}s")
        return ret
    ret.update(comment=f"{name} stopped", changes={"pid": {"old": pid, "new": None}})
    return ret


def _restart(name, daemon, pid):
    """Stop PID and start the daemon again; return (changes, error or None)."""
    if not _stop(pid, daemon["program"], daemon["timeout"]):
        return {}, f"{name} (pid {pid}) did not stop within {daemon['timeout']}s"
    new_pid, error = _start(name, daemon)
    return {"pid": {"old": pid, "new": new_pid}}, error


def _reload(name, daemon, reload):
    """Run RELOAD, then the probe; return (changes, error or None)."""
    error = _run(reload)
    if error:
        return {}, f"{name} failed to reload: {error}"
    return {"reloaded": True}, _answering(name, daemon["probe"], daemon["timeout"], daemon["connect"])


def mod_watch(name, start, pidfile, reload=None, executable=None, probe=None, timeout=15, config_files=None,
              connect=None, **kwargs):
    """
    A watched state changed: reload the daemon with RELOAD, or restart it
    when it has no reload command; start it when it is not running. Proven
    and rolled back as :py:func:`running` does.
    """
    daemon = _daemon(start, pidfile, executable, probe, timeout, config_files, connect)
    pid = _pid(pidfile, daemon["program"])
    if not pid:
        return running(name, start, pidfile, reload=reload, executable=executable, probe=probe, timeout=timeout,
                       config_files=config_files, connect=connect)
    return _take_changes(_ret(name), name, daemon, reload, pid, "a watched state changed")
