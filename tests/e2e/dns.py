"""A real DNS server for the test zone: dnsmasq on the namespace's resolver address.

/etc/resolv.conf inside the test namespace names 127.0.0.53, so everything the
tests start (Postfix, Dovecot, salt-call) resolves through this server. It
answers only from its own records: every other name is NXDOMAIN, never a
timeout, so lookups are fast and deterministic.
"""

import pathlib
import subprocess

from tests.e2e.polling import wait_until
from tests.harness.netns import RESOLVER
from tests.harness.procs import wait_for_port

#: answers are cacheable (dnsmasq's own records default to TTL 0)
RECORD_TTL = 300


class Zone:
    """The records the test DNS server serves.

    hosts: name -> IPv4 address (A record); mx: domain -> [(preference, host)].
    """

    def __init__(self, hosts, mx):
        self.hosts = dict(hosts)
        self.mx = {domain: list(exchangers) for domain, exchangers in mx.items()}

    def dnsmasq_arguments(self):
        arguments = [f"--host-record={name},{address}" for name, address in self.hosts.items()]
        for domain, exchangers in self.mx.items():
            arguments += [f"--mx-host={domain},{host},{preference}" for preference, host in exchangers]
        return arguments


class DnsServer:
    """dnsmasq in the foreground, logging every query it gets to BASE/queries.log."""

    def __init__(self, base, zone, address=RESOLVER):
        self.base = pathlib.Path(base)
        self.zone = zone
        self.address = address
        self.query_log = self.base / "queries.log"
        self._process = None

    def argv(self):
        return [
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
            "--no-poll", f"--listen-address={self.address}", "--bind-interfaces", "--port=53",
            "--user=root", "--group=root", f"--pid-file={self.base / 'dnsmasq.pid'}",
            "--log-queries", f"--log-facility={self.query_log}", f"--local-ttl={RECORD_TTL}",
            # everything not in the zone is NXDOMAIN: no upstream, no waiting
            "--local=/#/",
            *self.zone.dnsmasq_arguments(),
        ]

    def start(self):
        self.base.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(self.address, 53, timeout=10)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"dnsmasq did not start: {self._process.stderr.read().decode()}") from None
        return self

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None

    def queries(self):
        """(type, name, client address) of every query received so far."""
        seen = []
        text = self.query_log.read_text() if self.query_log.exists() else ""
        for line in text.splitlines():
            # "... dnsmasq[PID]: query[MX] example.test from 127.0.0.1"
            if ": query[" not in line:
                continue
            query = line.split(": query[", 1)[1]
            qtype, rest = query.split("] ", 1)
            name, _, client = rest.partition(" from ")
            seen.append((qtype, name, client))
        return seen

    def wait_for_query(self, name, qtype=None, timeout=10.0):
        """Wait until NAME (of QTYPE, if given) has been asked for; return the matching queries."""
        return wait_until(
            lambda: [q for q in self.queries() if q[1] == name and (qtype is None or q[0] == qtype)], timeout=timeout
        )
