"""Fixtures for the postconf module and state tests: cheap throwaway config dirs.

A sandboxed Postfix instance is made once per session; each test gets a copy of
its config dir with old timestamps, so postconf does not stall on a main.cf
that looks freshly edited (it waits until main.cf is ~2 s old).
"""

import itertools
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from tests.harness.postfix_instance import PostfixInstance

POSTCONF = shutil.which("postconf", path="/usr/sbin:/usr/bin:/sbin:/bin")
_copies = itertools.count(1)


def backdate(directory, seconds=60):
    """Make every file in DIRECTORY look SECONDS old."""
    then = time.time() - seconds
    for path in pathlib.Path(directory).iterdir():
        os.utime(path, (then, then))


class SandboxConfig:
    """A Postfix config dir and ground-truth access to it through postconf itself."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.main_cf = self.path / "main.cf"
        self.master_cf = self.path / "master.cf"

    def __str__(self):
        return str(self.path)

    def postconf(self, *args):
        proc = subprocess.run([POSTCONF, "-c", str(self.path), *args], capture_output=True, text=True, check=True)
        return proc.stdout

    def snapshot(self):
        """(bytes, mtime_ns) of main.cf and master.cf, to prove nothing was written."""
        return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in (self.main_cf, self.master_cf)}

    def backdate(self):
        backdate(self.path)


@pytest.fixture(scope="session")
def pristine_postfix(sandbox_base):
    """One sandbox instance (never started) whose config dir every test copies."""
    instance = PostfixInstance(sandbox_base / "postconf-pristine", address="127.0.0.39").create()
    backdate(instance.config_dir)
    return instance


@pytest.fixture
def sandbox_config(pristine_postfix, sandbox_base):
    """A fresh copy of the pristine config dir (queue and data dirs stay shared)."""
    target = sandbox_base / f"postconf-{next(_copies)}" / "etc"
    shutil.copytree(pristine_postfix.config_dir, target)
    yield SandboxConfig(target)
    shutil.rmtree(target.parent, ignore_errors=True)


@pytest.fixture
def postconf_calls(tmp_path, monkeypatch):
    """Record every postconf process the code under test starts, and how long it ran
    (a logging wrapper first on PATH)."""
    log = tmp_path / "postconf-calls.log"
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "postconf"
    wrapper.write_text(
        "#!/bin/bash\n"
        "started=$EPOCHREALTIME\n"
        f'{POSTCONF} "$@"\n'
        "status=$?\n"
        f'printf "%s %s %s\\n" "$started" "$EPOCHREALTIME" "$*" >> {log}\n'
        "exit $status\n"
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")

    def timed():
        """[(seconds, arguments without the leading ``-c DIR``)] of the postconf runs so far."""
        if not log.exists():
            return []
        runs = []
        for line in log.read_text().splitlines():
            started, ended, arguments = line.split(" ", 2)
            if arguments.startswith("-c "):
                arguments = arguments.split(" ", 2)[2]
            runs.append((float(ended) - float(started), arguments))
        return runs

    def calls():
        return [arguments for _, arguments in timed()]

    calls.timed = timed
    calls.reset = lambda: log.unlink(missing_ok=True)
    return calls
