"""Small helpers for the sandbox: run commands, wait for ports."""

import os
import pathlib
import signal
import socket
import subprocess
import time


def run(argv, check=True, **kwargs):
    """Run an argument list; on failure raise with the command's own output."""
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return proc


def wait_for_port(host, port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
            time.sleep(0.1)


def port_closed(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


def alive(pid):
    """True while PID runs (a zombie, which nobody here reaps, counts as gone)."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def stop_pidfile(pidfile, timeout=10.0):
    """SIGTERM the process PIDFILE names, if any, and wait for it to exit."""
    try:
        pid = int(pathlib.Path(pidfile).read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


#: the daemons a sandbox starts; only these are stopped when a dead run's pid files name them
SANDBOX_DAEMONS = ("master", "postgres", "dovecot", "unbound", "dnsmasq")


def stop_leftovers(directory):
    """Stop the daemons a test run that died left behind in DIRECTORY (by their pid files)."""
    for pidfile in pathlib.Path(directory).rglob("*.pid"):
        try:
            pid = int(pidfile.read_text().split()[0])
            program = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
        except (OSError, ValueError, IndexError):
            continue
        if program in SANDBOX_DAEMONS:
            stop_pidfile(pidfile)
