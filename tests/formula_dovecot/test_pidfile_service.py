"""pidfile_service with a real daemon (dnsmasq): a pid file is trusted only when
its PID is a live process running the daemon's program, and a probe decides
whether a daemon that runs also serves."""

import subprocess
import time

import pytest

from tests.harness.procs import alive, run

ADDRESS = "127.0.0.32"
#: outside the addresses the sandbox puts on lo: nothing answers there
SILENT = "127.0.0.99"


@pytest.fixture
def daemon(tmp_path):
    """The pidfile_service arguments of a dnsmasq answering on ADDRESS; stopped afterwards."""
    pidfile = tmp_path / "dnsmasq.pid"
    start = ["dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", f"--listen-address={ADDRESS}",
             "--bind-interfaces", f"--pid-file={pidfile}", "--user=root", "--address=/probe.test/192.0.2.7"]
    yield {"name": "dnsmasq", "start": start, "pidfile": str(pidfile), "timeout": 5}
    if pidfile.exists():
        run(["kill", pidfile.read_text().strip()], check=False)


def dig(server):
    return ["dig", f"@{server}", "+time=1", "+tries=1", "probe.test", "A"]


@pytest.fixture
def stranger():
    """A live process that is not the daemon (what a reused PID belongs to)."""
    with subprocess.Popen(["sleep", "60"]) as proc:
        yield proc.pid
        proc.kill()


@pytest.fixture
def zombie():
    """A PID of an exited, never reaped child."""
    proc = subprocess.Popen(["true"])
    while open(f"/proc/{proc.pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    yield proc.pid
    proc.wait()


def test_stale_pid_file_of_another_program_is_not_the_daemon(states, daemon, stranger):
    pidfile = daemon["pidfile"]
    with open(pidfile, "w", encoding="ascii") as handle:
        handle.write(f"{stranger}\n")

    stopped = states.pidfile_service.dead(name="dnsmasq", pidfile=pidfile)
    assert stopped.result is True
    assert stopped.changes == {}
    assert alive(stranger), "a process that does not run dnsmasq is never signalled"

    started = states.pidfile_service.running(**daemon)
    assert started.result is True, started.comment
    new_pid = started.changes["pid"]["new"]
    assert new_pid != stranger
    assert run(dig(ADDRESS)).stdout.count("192.0.2.7") == 1

    stopped = states.pidfile_service.dead(name="dnsmasq", pidfile=pidfile)
    assert stopped.changes == {"pid": {"old": new_pid, "new": None}}
    assert not alive(new_pid)
    assert alive(stranger)


def test_zombie_counts_as_dead(states, daemon, zombie):
    with open(daemon["pidfile"], "w", encoding="ascii") as handle:
        handle.write(f"{zombie}\n")
    ret = states.pidfile_service.running(**daemon)
    assert ret.result is True, ret.comment
    assert ret.changes["pid"]["new"] not in (None, zombie)


def test_daemon_that_does_not_answer_the_probe_fails(states, daemon):
    started = states.pidfile_service.running(probe=dig(SILENT), **daemon)
    assert started.result is False
    assert f"dnsmasq runs but does not answer dig @{SILENT}" in started.comment
    assert started.changes["pid"]["new"], "the start itself happened"

    again = states.pidfile_service.running(probe=dig(SILENT), **daemon)
    assert again.result is False, "a running daemon must still answer"

    answering = states.pidfile_service.running(probe=dig(ADDRESS), **daemon)
    assert answering.result is True, answering.comment
    assert answering.changes == {}
