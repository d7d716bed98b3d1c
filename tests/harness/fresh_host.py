"""Bare Debian 12 hosts for applying the formula from scratch.

The image: a Debian 12 minbase root filesystem (mmdebstrap) with python3,
this project's Salt in a venv at /opt/salt (salt-call on PATH) and a local
apt repository /srv/debian holding the packages the formula installs
(downloaded once, with their dependencies, from the mirror this machine's
apt uses) as its only apt source, so hosts install offline. Nothing the
formula installs is installed in the image. It is built once and cached in
/var/cache/pfxt-fresh/<key>/, the key a hash of everything it is built
from. Building needs the network: run ``python -m tests.harness.fresh_host
build`` outside the suite's namespace (scripts/test does).

A host: an overlay over the image, chrooted in its own mount, PID and UTS
namespace inside the caller's network namespace, with its own hostname and
address, /proc and a minimal /dev, a policy-rc.d so packages start no
daemons, the formula in /srv/salt and a masterless minion config. Stopping
it kills the namespace's init and with it every daemon started inside.
"""

import contextlib
import ctypes
import fcntl
import hashlib
import importlib.metadata
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CACHE = pathlib.Path(os.environ.get("PFXT_FRESH_CACHE", "/var/cache/pfxt-fresh"))
SUITE = "bookworm"
#: bump when the build steps below change
RECIPE = 1
IMAGE_PACKAGES = ("python3", "python3-venv")
PYTHON_PACKAGES = {"salt": "salt", "psycopg": "psycopg[binary]", "pyyaml": "pyyaml", "jinja2": "jinja2"}
#: an image no test run used for this long is removed when another is built
UNUSED_DAYS = 3
LOCAL_REPO = "/srv/debian"
SALT_VENV = "/opt/salt"
#: what a host's commands run with (the caller's environment stays outside)
HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8"}
READY = "run/fresh-host-ready"
#: the host's init: reaps the daemons that double-fork (pid 1 of the namespace)
INIT = ("import os, time\n"
        f"open('/{READY}', 'w').close()\n"
        "while True:\n"
        "    try:\n"
        "        os.wait()\n"
        "    except ChildProcessError:\n"
        "        time.sleep(0.5)\n")
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
PR_SET_PDEATHSIG = 1


# --- the image ----------------------------------------------------------------


def formula_packages():
    """Every package the formula's pkg states can install on Debian: the `pkgs`
    and `packages` values in defaults.yaml with osfamilymap.yaml's Debian lookup."""
    defaults = yaml.safe_load((REPO / "postfix" / "defaults.yaml").read_text())["postfix"]
    debian = yaml.safe_load((REPO / "postfix" / "osfamilymap.yaml").read_text()).get("Debian", {})
    found = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("pkgs", "packages"):
                    found.update(_names(value))
                else:
                    walk(value)

    walk(defaults)
    walk({"lookup": debian})
    return sorted(found)


def _names(value):
    if isinstance(value, dict):
        return [name for names in value.values() for name in _names(names)]
    return [value] if isinstance(value, str) else list(value)


def mirror_sources():
    """The one-line apt sources of this machine's Debian 12 mirror (main only), from
    /etc/apt/sources.list and sources.list.d (one-line and deb822 files)."""
    lines = []
    apt = pathlib.Path("/etc/apt")
    files = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            for line in path.read_text().splitlines():
                fields = line.split("#", 1)[0].split()
                if fields[:1] == ["deb"]:
                    fields = [f for f in fields[1:] if not f.startswith("[") and not f.endswith("]")]
                    if len(fields) >= 3 and fields[1].startswith(SUITE) and "main" in fields[2:]:
                        lines.append(f"deb {fields[0]} {fields[1]} main")
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in path.read_text().split("\n\n"):
            entry = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    entry[key.strip().lower()] = value.split()
            if "deb" in entry.get("types", []) and entry.get("enabled", ["yes"]) != ["no"] \
                    and "main" in entry.get("components", []):
                lines += [f"deb {uri} {suite} main" for uri in entry.get("uris", [])
                          for suite in entry.get("suites", []) if suite.startswith(SUITE)]
    if not lines:
        raise RuntimeError(f"no Debian {SUITE} source in /etc/apt/sources.list*: the image needs a mirror")
    return list(dict.fromkeys(lines))


def python_requirements():
    """This project's Salt and libraries at the versions of the running venv."""
    return [f"{spec}=={importlib.metadata.version(dist)}" for dist, spec in PYTHON_PACKAGES.items()]


def image_key():
    recipe = {"recipe": RECIPE, "suite": SUITE, "image": IMAGE_PACKAGES, "formula": formula_packages(),
              "python": python_requirements(), "mirror": mirror_sources()}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def image_dir():
    return CACHE / image_key()


def cached_image():
    """The image's root filesystem, or a clear error naming how to build it."""
    root = image_dir() / "rootfs"
    if not (image_dir() / "complete").exists():
        raise RuntimeError(f"no fresh-host image in {image_dir()}: build it outside the test namespace with "
                           f"`{sys.executable} -m tests.harness.fresh_host build` (scripts/test does)")
    (image_dir() / "complete").touch()  # last used: images unused for UNUSED_DAYS are removed
    return root


def _remove_unused_images():
    for stamp in CACHE.glob("*/complete"):
        if time.time() - stamp.stat().st_mtime > UNUSED_DAYS * 86400:
            shutil.rmtree(stamp.parent, ignore_errors=True)


def build_image(log=print):
    """Build the image unless it is cached; return its root filesystem. Needs the network."""
    directory = image_dir()
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same key waits for the first
        if (directory / "complete").exists():
            return directory / "rootfs"
        _remove_unused_images()
        started = time.monotonic()
        log(f"fresh-host image: building {directory} (Debian {SUITE} minbase, Salt, "
            f"{len(formula_packages())} formula packages)")
        scratch = pathlib.Path(tempfile.mkdtemp(prefix="build-", dir=CACHE))
        try:
            _build(scratch)
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            (scratch / "rootfs").rename(directory / "rootfs")
            (directory / "complete").write_text(json.dumps({"packages": formula_packages(),
                                                            "python": python_requirements()}) + "\n")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        log(f"fresh-host image: built in {time.monotonic() - started:.0f}s")
        return directory / "rootfs"


def _build(scratch):
    wheels = scratch / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), *python_requirements()])
    requirements = " ".join(f"'{spec}'" for spec in python_requirements())
    packages = " ".join(formula_packages())
    local_source = f"deb [trusted=yes] file:{LOCAL_REPO} ./"
    hooks = [
        # download only: the packages stay uninstalled, their .debs become the local repository
        f'mkdir -p "$1{LOCAL_REPO}/partial"',
        f'chroot "$1" apt-get install -q -y --download-only -o Dir::Cache::Archives={LOCAL_REPO}/ {packages}',
        f'rmdir "$1{LOCAL_REPO}/partial" && cd "$1{LOCAL_REPO}" && dpkg-scanpackages --multiversion . > Packages',
        f'echo "{local_source}" > "$1/etc/apt/sources.list"',
        'chroot "$1" apt-get update -q',
        f'cp -r {wheels} "$1/tmp/wheels"',
        f'chroot "$1" python3 -m venv {SALT_VENV}',
        f'chroot "$1" {SALT_VENV}/bin/pip install -q --no-index --find-links /tmp/wheels {requirements}',
        f'rm -rf "$1/tmp/wheels" && ln -s {SALT_VENV}/bin/salt-call "$1/usr/local/bin/salt-call"',
    ]
    argv = ["mmdebstrap", "--variant=minbase", "--include=" + ",".join(IMAGE_PACKAGES),
            "--skip=cleanup/apt/lists", *[f"--customize-hook={hook}" for hook in hooks],
            SUITE, str(scratch / "rootfs"), *mirror_sources()]
    _run(argv)


def _run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# --- hosts --------------------------------------------------------------------


def _die_with_parent():
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class FreshHost:
    """One bare host over IMAGE, its files under BASE (overlay upper and work dirs, mount point)."""

    def __init__(self, image, base, address, hostname="mx1.example.com", outlive_caller=False):
        self.image = pathlib.Path(image)
        self.outlive_caller = outlive_caller
        self.base = pathlib.Path(base)
        self.address = address
        self.hostname = hostname
        self.upper = self.base / "upper"
        self.mountpoint = self.base / "root"
        self._unshare = None
        self.pid = None

    @property
    def root(self):
        """The host's / as this process sees it (through its init's mount namespace)."""
        return pathlib.Path(f"/proc/{self.pid}/root")

    def start(self, timeout=30):
        for directory in (self.upper, self.base / "work", self.mountpoint):
            directory.mkdir(parents=True, exist_ok=True)
        self._prepare()
        mounts = [
            f"mount -t overlay overlay -o lowerdir={self.image},upperdir={self.upper},"
            f"workdir={self.base / 'work'} {self.mountpoint}",
            f"mount -t proc proc {self.mountpoint}/proc",
            f"mount -t tmpfs -o mode=0755,nosuid dev {self.mountpoint}/dev",
            *[f"mknod -m 0666 {self.mountpoint}/dev/{name} c {major} {minor}"
              for name, (major, minor) in DEVICES.items()],
            f"ln -s /proc/self/fd {self.mountpoint}/dev/fd",
            f"mkdir -m 1777 {self.mountpoint}/dev/shm",
            f"mkdir {self.mountpoint}/dev/pts",  # Postfix's tools run on a pty to print their errors
            f"mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts {self.mountpoint}/dev/pts",
            f"ln -s pts/ptmx {self.mountpoint}/dev/ptmx",
            f"mount -t tmpfs -o mode=0755,nosuid run {self.mountpoint}/run",
            f"hostname {self.hostname}",
            f'exec chroot {self.mountpoint} python3 -c "$1"',
        ]
        with open(self.base / "init.log", "wb") as log:
            self._unshare = subprocess.Popen(
                ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--propagation", "private",
                 "sh", "-ec", " && ".join(mounts), "init", INIT],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=None if self.outlive_caller else _die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            if self._unshare.poll() is not None:
                raise RuntimeError(f"host {self.hostname} did not start: {(self.base / 'init.log').read_text()}")
            self.pid = self.pid or self._child()
            if self.pid and (self.root / READY).exists():
                (self.base / "init.pid").write_text(f"{self.pid}\n")
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"host {self.hostname} not ready after {timeout}s")
            time.sleep(0.05)

    def _child(self):
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int(pathlib.Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children").read_text().split()[0])
        return None

    def _prepare(self):
        """What this host has that the image has not: its names, no daemons from
        packages, the formula in /srv/salt and a masterless minion."""
        short = self.hostname.split(".")[0]
        files = {
            "etc/hostname": f"{self.hostname}\n",
            "etc/mailname": f"{self.hostname}\n",
            "etc/hosts": f"127.0.0.1 localhost\n{self.address} {self.hostname} {short}\n",
            "etc/resolv.conf": "nameserver 127.0.0.53\noptions timeout:1 attempts:1\n",
            "usr/sbin/policy-rc.d": "#!/bin/sh\n# packages start no daemons on a test host\nexit 101\n",
            "etc/salt/minion": yaml.safe_dump({
                "id": self.hostname, "file_client": "local",
                "file_roots": {"base": ["/srv/salt"]}, "pillar_roots": {"base": ["/srv/pillar"]},
                "log_level_logfile": "info",
            }),
        }
        for name, text in files.items():
            path = self.upper / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        (self.upper / "usr/sbin/policy-rc.d").chmod(0o755)
        salt_root = self.upper / "srv" / "salt"
        for name in ("_modules", "_states", "postfix"):
            shutil.copytree(REPO / name, salt_root / name, ignore=shutil.ignore_patterns("__pycache__"))
        (self.upper / "srv" / "pillar").mkdir(mode=0o700, parents=True)

    def set_pillar(self, *layers):
        """Pillar for the host's minion: each layer a dict or a YAML file, later ones win."""
        pillar_dir = self.root / "srv" / "pillar"
        names = []
        for index, layer in enumerate(layers):
            text = pathlib.Path(layer).read_text() if isinstance(layer, (str, os.PathLike)) else yaml.safe_dump(layer)
            (pillar_dir / f"layer{index}.sls").write_text(text)
            names.append(f"layer{index}")
        (pillar_dir / "top.sls").write_text(yaml.safe_dump({"base": {"*": names}}))
        return self

    def run(self, *argv, check=True, timeout=600, input=None):
        """Run ARGV inside the host (its root, mounts, PID and UTS namespace)."""
        proc = subprocess.run(
            ["nsenter", f"--target={self.pid}", "--mount", "--pid", "--uts", "--root", "--wd", "--", *argv],
            capture_output=True, text=True, timeout=timeout, input=input, env=HOST_ENV, cwd="/")
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed in {self.hostname} ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def salt_call(self, *args, timeout=900):
        """salt-call --local with JSON output; returns (returncode, parsed output or the raw text)."""
        proc = self.run("salt-call", "--local", "--out=json", "--retcode-passthrough", "--log-level=quiet", *args,
                        check=False, timeout=timeout)
        try:
            return proc.returncode, json.loads(proc.stdout)["local"]
        except (ValueError, KeyError):
            return proc.returncode, proc.stdout + proc.stderr

    def apply(self, sls="postfix", test=False, timeout=900):
        """state.apply SLS (test=True: predict only); returns (returncode, {state id: result})."""
        return self.salt_call("state.apply", sls, *(["test=True"] if test else []), timeout=timeout)

    def installed(self, package):
        proc = self.run("dpkg-query", "-W", "-f=${Status}", package, check=False)
        return proc.stdout.endswith("ok installed")

    def stop(self):
        """Kill the namespace's init: the kernel kills everything else in it."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self._unshare:
            # unshare exits once its child, the init, has: after the kernel ended everything in the namespace
            try:
                self._unshare.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._unshare.kill()
                self._unshare.wait()
        self.pid = self._unshare = None

    @staticmethod
    def stop_left(base):
        """Stop a host another process started in BASE (outlive_caller) and left running."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((pathlib.Path(base) / "init.pid").read_text())
            if READY in pathlib.Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while pathlib.Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.1)


def pillar_layer(host, database, lookup_user):
    """The pillar layer that adapts pillar.example to HOST: its address for every
    listener and mynetworks, the database, log files the tests can read. Layer it last."""
    listen = {"address": host.address}
    return {"postfix": {
        "main": {"inet_interfaces": host.address, "mynetworks": f"127.0.0.1/32 {host.address}/32",
                 "maillog_file": "/var/log/postfix.log"},
        "database": database,
        "postfixadmin": {"lookup_user": lookup_user},
        "dovecot": {"imap_listen": listen, "quota_status_listen": listen, "log_path": "/var/log/dovecot.log"},
    }}


def main(argv):
    if argv[1:] != ["build"]:
        raise SystemExit(f"usage: {argv[0]} build    (build the fresh-host image unless cached)")
    print(build_image())


if __name__ == "__main__":
    main(sys.argv)
