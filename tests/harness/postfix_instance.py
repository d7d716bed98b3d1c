"""A sandboxed Postfix instance: own config, queue and data directories.

It never reads or writes /etc/postfix: every command gets ``-c CONFIG_DIR``.
"""

import os
import pathlib
import shutil
import time

from .procs import port_closed, run, stop_pidfile, wait_for_port

MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"


class PostfixInstance:
    def __init__(self, base, address="127.0.0.2", hostname="mx1.example.test", port=25):
        self.base = pathlib.Path(base)
        self.address = address
        self.hostname = hostname
        self.port = port
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "spool"
        self.data_dir = self.base / "data"
        self.maillog = self.base / "log" / "maillog"

    def host_parameters(self):
        """What a host's own main.cf holds before the formula runs."""
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "myhostname": self.hostname,
            "mydomain": self.hostname.split(".", 1)[1],
            "mydestination": "$myhostname, localhost",
            "mynetworks": "127.0.0.1/32",
            "inet_interfaces": self.address,
            "inet_protocols": "ipv4",
            "smtp_bind_address": self.address,
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.base),
            "smtputf8_enable": "no",
        }

    def create(self):
        """Write main.cf and master.cf (chroot off: the queue is not a jail)."""
        for directory in (self.config_dir, self.data_dir, self.maillog.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        shutil.copy(MASTER_CF_DIST, self.config_dir / "master.cf")
        lines = [f"{name} = {value}" for name, value in self.host_parameters().items()]
        (self.config_dir / "main.cf").write_text("\n".join(lines) + "\n")
        self.backdate()
        self.postconf("-F", "*/*/chroot = n")
        shutil.chown(self.data_dir, "postfix", "postfix")
        return self

    def backdate(self, seconds=10):
        """Age main.cf and master.cf: Postfix tools stall on a main.cf younger than ~2 s."""
        then = time.time() - seconds
        for name in ("main.cf", "master.cf"):
            os.utime(self.config_dir / name, (then, then))

    def postconf(self, *args):
        return run(["postconf", "-c", str(self.config_dir), *args]).stdout

    def postfix(self, *args, check=True):
        return run(["postfix", "-c", str(self.config_dir), *args], check=check)

    def status(self):
        return self.postfix("status", check=False).returncode == 0

    def start(self, wait=True):
        if not port_closed(self.address, self.port):
            raise RuntimeError(f"{self.address}:{self.port} is taken already: another fixture's daemon holds it")
        self.postfix("start")
        if wait:
            wait_for_port(self.address, self.port)
        return self

    def stop(self):
        if self.status():
            self.postfix("stop", check=False)
            deadline = time.monotonic() + 15
            while self.status() and time.monotonic() < deadline:
                time.sleep(0.1)
        if not port_closed(self.address, self.port):
            self.postfix("abort", check=False)
        # last resort when main.cf is too broken for postfix stop
        stop_pidfile(self.queue_dir / "pid" / "master.pid")
