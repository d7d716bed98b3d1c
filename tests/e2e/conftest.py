"""End-to-end fixtures: the test DNS zone, a TLS certificate, and the mail hosts the formula is applied to.

Applying the formula costs seconds, so the primary MX is shared by the whole
package (its daemons and the DNS server on the namespace's resolver address
stop when tests/e2e ends, before other packages start theirs): tests ask for it in a configuration (`Site.configure`), and the
formula is applied again only when that configuration differs from the last
one. Test modules keep tests of one configuration together.
"""

import shutil

import pytest

from tests.e2e.dns import DnsServer
from tests.e2e.site import Site
from tests.e2e.topology import MAILBOXES, PRIMARY, ZONE, mail_domain_pillar
from tests.harness.procs import run


@pytest.fixture(scope="package")
def dns(sandbox_base):
    """The real DNS server at the namespace's resolver address, serving the test zone."""
    server = DnsServer(sandbox_base / "dns", ZONE).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def tls_pillar(sandbox_base):
    """Pillar giving Postfix's smtpd a self-signed certificate (STARTTLS)."""
    directory = sandbox_base / "tls"
    directory.mkdir()
    cert, key = directory / "mail.pem", directory / "mail.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={PRIMARY[1]}",
         "-keyout", str(key), "-out", str(cert)])
    key.chmod(0o600)
    return {"main": {"smtpd_tls_cert_file": str(cert), "smtpd_tls_key_file": str(key)}}


@pytest.fixture(scope="package")
def primary_pillar(tls_pillar):
    """The primary MX's own pillar over pillar.example: the certificate, example.test and its mailboxes."""
    return (tls_pillar, mail_domain_pillar(*MAILBOXES))


def _sites(base, pg):
    """A Site maker and the list of what it made."""
    made = []

    def make(name, hostname, address):
        site = Site(base / f"e2e-{name}", pg, name, hostname, address).create()
        made.append(site)
        return site

    return make, made


def _destroy(sites):
    for site in reversed(sites):
        site.destroy()
        shutil.rmtree(site.base, ignore_errors=True)


@pytest.fixture(scope="package")
def primary_host(sandbox_base, pg, dns):
    """The session's primary MX (mx1), created; use `primary` to get it configured."""
    make, made = _sites(sandbox_base, pg)
    yield make(*PRIMARY)
    _destroy(made)


@pytest.fixture
def primary(primary_host, primary_pillar):
    """The primary MX in its base configuration (pillar.example + primary_pillar)."""
    return primary_host.configure(*primary_pillar)


@pytest.fixture(scope="module")
def make_site(sandbox_base, pg, dns):
    """make_site(name, hostname, address) -> a Site of this module, created (not applied); destroyed afterwards."""
    make, made = _sites(sandbox_base, pg)
    yield make
    _destroy(made)
