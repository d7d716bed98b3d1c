"""A loopback-only network namespace the current process moves into.

Everything started afterwards (Postfix, PostgreSQL, Dovecot, DNS servers,
salt-call) inherits it, so no test traffic can leave 127.0.0.0/8.  Like
``ip netns exec``, the process also gets a private mount namespace in which
/etc/netns/NAME/resolv.conf is bind-mounted over /etc/resolv.conf.
"""

import ctypes
import os
import pathlib
import subprocess

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 1 << 19

PREFIX = "pfxt-"
#: addresses the sandbox hands out to tests: 127.0.0.2 .. 127.0.0.40
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 41)]
#: addresses only the end-to-end site uses (its daemons run all session): 127.0.0.41 .. 127.0.0.49
E2E_ADDRESSES = [f"127.0.0.{n}" for n in range(41, 50)]
#: addresses of the fleet tests' mail hosts and their client: 127.0.0.61 .. 127.0.0.69
FLEET_ADDRESSES = [f"127.0.0.{n}" for n in range(61, 70)]
#: the address of the test DNS server named in resolv.conf
RESOLVER = "127.0.0.53"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True, text=True)


def remove_stale():
    """Delete namespaces left by test runs whose process is gone."""
    netns_dir = pathlib.Path("/run/netns")
    if not netns_dir.is_dir():
        return
    for entry in netns_dir.iterdir():
        pid = entry.name[len(PREFIX):]
        if entry.name.startswith(PREFIX) and pid.isdigit() and not pathlib.Path(f"/proc/{pid}").exists():
            subprocess.run(["ip", "netns", "delete", entry.name], capture_output=True)


class Namespace:
    """Create the namespace NAME, bring lo up with the sandbox addresses."""

    def __init__(self, name=None, resolver=RESOLVER):
        self.name = name or f"{PREFIX}{os.getpid()}"
        self.resolver = resolver
        self.etc_dir = pathlib.Path("/etc/netns") / self.name
        self._host_mnt_fd = None

    def create(self):
        remove_stale()
        _run("ip", "netns", "add", self.name)
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        for address in ADDRESSES + E2E_ADDRESSES + FLEET_ADDRESSES:
            _run("ip", "-n", self.name, "addr", "add", f"{address}/8", "dev", "lo")
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        (self.etc_dir / "resolv.conf").write_text(f"nameserver {self.resolver}\noptions timeout:1 attempts:2\n")
        return self

    def enter(self):
        """Move this (single-threaded) process into the namespace."""
        self._host_mnt_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _check(_libc.setns(fd, CLONE_NEWNET), f"setns {self.name}")
        finally:
            os.close(fd)
        _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
        _check(_libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make / a slave mount")
        resolv = str(self.etc_dir / "resolv.conf").encode()
        _check(_libc.mount(resolv, b"/etc/resolv.conf", b"none", MS_BIND, None), "bind resolv.conf")
        return self

    def delete(self):
        """Delete the namespace from the host's mount namespace."""
        host_fd = self._host_mnt_fd

        def to_host_mounts():
            if host_fd is not None:
                _check(_libc.setns(host_fd, CLONE_NEWNS), "setns host mounts")

        subprocess.run(["ip", "netns", "delete", self.name], preexec_fn=to_host_mounts, capture_output=True)
        subprocess.run(["rm", "-rf", str(self.etc_dir)], preexec_fn=to_host_mounts, capture_output=True)
