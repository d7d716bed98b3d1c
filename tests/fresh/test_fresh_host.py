"""The fresh-host harness itself: a host is its own machine name and process
tree, packages start no daemons there, and stopping it ends every process
started inside (so no test leaves daemons behind)."""

import pytest

from tests.fresh.conftest import ADDRESSES
from tests.harness.fresh_host import READY
from tests.harness.procs import port_closed, wait_for_port

PORT = 8025


@pytest.fixture
def host(make_site):
    return make_site(ADDRESSES[0], hostname="bare.example.com").host


def test_host_has_its_own_name_and_process_tree(host):
    assert host.run("hostname").stdout.strip() == "bare.example.com"
    assert host.run("python3", "-c", "import socket; print(socket.getfqdn())").stdout.strip() == "bare.example.com"
    assert READY in host.run("cat", "/proc/1/cmdline").stdout  # pid 1 is the host's own init


def test_packages_start_no_daemons(host):
    assert host.run("/usr/sbin/policy-rc.d", check=False).returncode == 101


def test_stop_ends_daemons_started_inside(host):
    daemon = f"import socket, time; s = socket.create_server(('{host.address}', {PORT})); time.sleep(3600)"
    host.run("sh", "-c", f'setsid python3 -c "{daemon}" >/dev/null 2>&1 < /dev/null &')
    wait_for_port(host.address, PORT)
    host.stop()
    assert port_closed(host.address, PORT)
