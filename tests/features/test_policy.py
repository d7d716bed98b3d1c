"""postfix:policy over real SMTP: postgrey greylists (450, then the retry
after the delay is accepted), policyd-spf rejects an SPF hard fail that the
test DNS zone serves, postsrsd rewrites the envelope sender of forwarded
mail."""

import contextlib
import json
import smtplib
import time

import pytest

from tests.e2e.dns import DnsServer, Zone
from tests.e2e.polling import wait_until
from tests.features.peers import OUTSIDE_CLIENT, PARTNER_TRANSPORT, queued, rcpt
from tests.formula.conftest import PILLAR_EXAMPLE
from tests.harness.netns import ADDRESSES
from tests.harness.procs import alive, stop_pidfile, wait_for_port

SPF_DNS_ADDRESS = ADDRESSES[-5]
GREYLIST_DELAY = 3
RECIPIENT = "grey@example.com"


class SpfZone(Zone):
    """The test zone plus TXT records."""

    def __init__(self, txt):
        super().__init__({}, {})
        self.txt = txt

    def dnsmasq_arguments(self):
        return [f"--txt-record={name},{text}" for name, text in self.txt.items()]


def base_layer(sandbox, **policy):
    """HELO checks that need no DNS; the daemons' files inside the sandbox."""
    base = sandbox.instance.base
    defaults = {
        "postgrey": {"dbdir": str(base / "postgrey"), "pidfile": str(base / "postgrey" / "postgrey.pid"),
                     "listen": {"address": sandbox.instance.address}},
        "srs": {"pidfile": str(base / "postsrsd.pid"), "listen": sandbox.instance.address},
    }
    for name, settings in policy.items():
        defaults[name] = {**defaults.get(name, {}), **settings}
    return {"postfix": {"hardening": {"helo_restrictions": "safe"}, "policy": defaults,
                        # Debian's postgrey never greylists postmaster@ (whitelist_recipients)
                        "postfixadmin": {"mailboxes": {RECIPIENT: {"password": "grey-pw-1"}}}}}


@pytest.fixture
def policy_sandbox(formula_sandbox):
    yield formula_sandbox
    base = formula_sandbox.instance.base
    stop_pidfile(base / "postgrey" / "postgrey.pid")
    stop_pidfile(base / "postsrsd.pid")


def test_postgrey_greylists_then_accepts_the_retry(policy_sandbox):
    sandbox = policy_sandbox
    layer = base_layer(sandbox, postgrey={"enabled": True, "delay": GREYLIST_DELAY})
    sandbox.apply_ok(PILLAR_EXAMPLE, layer)
    restrictions = sandbox.main_cf()["smtpd_recipient_restrictions"]
    assert restrictions.startswith("permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, ")
    greylisting = f"check_policy_service inet:{sandbox.instance.address}:10023"
    assert restrictions.index(greylisting) < restrictions.index("quota_check.cf"), "the quota check's OK ends the list"
    wait_for_port(sandbox.instance.address, 10023)

    code, text = rcpt(sandbox.instance, "someone@good.example", RECIPIENT)
    assert code == 450 and "Greylisted" in text, (code, text)
    code, text = rcpt(sandbox.instance, "someone@good.example", RECIPIENT)
    assert code == 450, "a retry before the delay is greylisted again"
    time.sleep(GREYLIST_DELAY + 1)
    assert rcpt(sandbox.instance, "someone@good.example", RECIPIENT)[0] == 250
    assert sandbox.apply_ok(PILLAR_EXAMPLE, layer) == {}, "a second apply changes nothing"

    pid = int((sandbox.instance.base / "postgrey" / "postgrey.pid").read_text().split()[0])
    sandbox.apply_ok(PILLAR_EXAMPLE, layer, sls="postfix.clean")
    assert "10023" not in sandbox.main_cf().get("smtpd_recipient_restrictions", "")
    assert wait_until(lambda: not alive(pid)), "postfix.clean stops the postgrey it started"


@contextlib.contextmanager
def resolver(netns, address):
    """The namespace's resolv.conf (bind-mounted on /etc/resolv.conf) names ADDRESS meanwhile:
    the suite's own test DNS server may already hold the usual resolver address."""
    resolv_conf = netns.etc_dir / "resolv.conf"
    before = resolv_conf.read_text()
    with open(resolv_conf, "w") as handle:  # in place: the bind mount follows the inode
        handle.write(f"nameserver {address}\noptions timeout:1 attempts:2\n")
    try:
        yield
    finally:
        with open(resolv_conf, "w") as handle:
            handle.write(before)


def test_spf_hard_fail_rejected(policy_sandbox, sandbox_base, netns):
    sandbox = policy_sandbox
    zone = SpfZone({"spf-fail.test": "v=spf1 -all", "spf-pass.test": f"v=spf1 ip4:{OUTSIDE_CLIENT} -all"})
    dns = DnsServer(sandbox_base / "spf-dns", zone, address=SPF_DNS_ADDRESS).start()
    try:
        with resolver(netns, SPF_DNS_ADDRESS):
            sandbox.apply_ok(PILLAR_EXAMPLE, base_layer(sandbox, spf={"enabled": True,
                                                                      "skip_addresses": "127.0.0.1/32"}))
            assert "check_policy_service unix:private/policyd-spf" in sandbox.main_cf()["smtpd_recipient_restrictions"]
            assert "policyd-spf/unix" in sandbox.service_lines()

            code, text = rcpt(sandbox.instance, "someone@spf-fail.test", RECIPIENT)
            assert code == 550 and "SPF" in text, (code, text)
            assert rcpt(sandbox.instance, "someone@spf-pass.test", RECIPIENT)[0] == 250
    finally:
        dns.stop()


def test_srs_rewrites_the_sender_of_forwarded_mail(policy_sandbox, partner_mx):
    partner = partner_mx
    sandbox = policy_sandbox
    instance = sandbox.instance
    layer = base_layer(sandbox, srs={"enabled": True, "domain": "example.com"})
    layer["postfix"]["aliases"] = {"forwarded": ["friend@partner.example"]}
    layer["postfix"]["maps"] = {"transport": {"entries": PARTNER_TRANSPORT}}
    layer["postfix"]["main"] = {"transport_maps": "maps:transport"}
    sandbox.apply_ok(PILLAR_EXAMPLE, layer)
    assert sandbox.main_cf()["sender_canonical_maps"] == f"tcp:{instance.address}:10001"

    with smtplib.SMTP(instance.address, 25, timeout=15, source_address=(OUTSIDE_CLIENT, 0)) as smtp:
        smtp.ehlo("client.example.com")
        smtp.sendmail("alice@sender.example", [f"forwarded@{instance.hostname}"], b"Subject: fwd\r\n\r\nhi\r\n")

    messages = wait_until(lambda: queued(partner), timeout=30)
    assert [m["recipients"][0]["address"] for m in messages] == ["friend@partner.example"]
    sender = messages[0]["sender"]
    assert sender.startswith("SRS0=") and sender.endswith("=sender.example=alice@example.com"), sender
    assert sandbox.apply_ok(PILLAR_EXAMPLE, layer) == {}


def test_srs_without_domain_refused(formula_sandbox):
    rc, result = formula_sandbox.apply({"postfix": {"policy": {"srs": {"enabled": True}}}})
    assert rc != 0 and "pillar postfix:policy:srs:domain" in json.dumps(result)
