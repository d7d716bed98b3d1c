"""Small helpers for the sandbox: run commands, wait for ports."""

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
