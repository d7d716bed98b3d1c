"""R8-R11: what the performance settings do on a running mail host.

R8/R9 with pillar.example's values and with `process_limit: auto`; R10 a
local caching resolver that Postfix's own lookups go through (proved by the
upstream test DNS server seeing a name once although Postfix looked it up
twice); R11 the queue moved onto its own noatime filesystem (a loop-mounted
image) with mail flowing through it and nothing queued before lost.
"""

import math
import pathlib

import pytest

from tests.e2e import mail
from tests.e2e.topology import ALICE as USER
from tests.e2e.topology import CACHE_PROBE, PRIMARY, SPARE, UNREACHABLE, mail_domain_pillar
from tests.harness.procs import run

BASE = (mail_domain_pillar(USER),)
RESOLV_CONF = pathlib.Path("/etc/resolv.conf")
AUTO_SIZING = {"process_limit": "auto", "process_memory_mb": 64, "memory_share": 0.5}


def dns_cache_pillar():
    return {"performance": {"dns_cache": {
        "enabled": True, "backend": "unbound", "listen": "127.0.0.1", "forwarders": ["127.0.0.53"],
        # the namespace's resolv.conf (a private bind mount over /etc/resolv.conf): what Postfix reads
        "resolv_conf": str(RESOLV_CONF),
        # unbound answers .test itself (RFC 6761) unless told to forward it
        "forward_local_zones": ["test"],
    }}}


@pytest.fixture(scope="module")
def spare(make_site):
    """A host of its own: these tests change its resolver and move its queue."""
    return make_site(*SPARE)


@pytest.fixture
def site(spare):
    return spare.configure(*BASE)


def test_biff_is_off(site):
    assert site.postconf("biff") == "no"


def test_process_limit_is_75(site):
    assert site.postconf("default_process_limit") == "75"


@pytest.fixture(scope="module")
def restore_resolv_conf():
    """Put the namespace's resolv.conf back after the module, whatever the formula did to it."""
    before = RESOLV_CONF.read_text()
    yield
    RESOLV_CONF.write_text(before)


@pytest.fixture
def cached_site(spare, restore_resolv_conf):
    """Configured with process_limit auto and the local caching resolver."""
    return spare.configure(*BASE, {"performance": AUTO_SIZING}, dns_cache_pillar())


def test_auto_process_limit_follows_the_sizing_rule(cached_site):
    _, mem_total, _ = cached_site.minion.salt_call("grains.get", "mem_total", check=True)
    rule = max(1, math.floor(mem_total * AUTO_SIZING["memory_share"] / AUTO_SIZING["process_memory_mb"]))
    assert cached_site.postconf("default_process_limit") == str(rule)


def test_resolv_conf_names_the_local_cache(cached_site):
    nameservers = [line.split()[1] for line in RESOLV_CONF.read_text().splitlines() if line.startswith("nameserver")]
    assert nameservers == ["127.0.0.1"]


def test_local_cache_answers_for_the_test_zone(cached_site):
    answer = run(["dig", "+short", "+time=2", "@127.0.0.1", PRIMARY[1], "A"]).stdout.split()
    assert answer == [PRIMARY[2]]


def test_postfix_lookups_go_through_the_cache(cached_site, dns):
    """reject_unknown_helo_hostname (strict preset) makes smtpd look the HELO name up in every session."""
    probe = CACHE_PROBE
    assert dns.wait_for_query(probe, timeout=0) == []
    for _ in range(2):
        code, text = mail.rcpt_reply(cached_site.address, USER.address, helo=probe)
        assert code == 250, text
    asked = dns.wait_for_query(probe, "A")
    assert len(asked) == 1, f"upstream saw {asked}: Postfix did not resolve through the cache"


@pytest.fixture(scope="module")
def held_message(spare):
    """A message queued before the move: relayed from mynetworks to a host where nothing listens."""
    spare.configure(*BASE)
    token = mail.deliver(spare.address, f"someone@{UNREACHABLE[0]}", source="127.0.0.1")
    queue = spare.queue()
    assert [m["recipients"][0]["address"] for m in queue] == [f"someone@{UNREACHABLE[0]}"], queue
    return token


@pytest.fixture(scope="module")
def moved_site(spare, held_message):
    """The queue moved onto a loop-mounted ext4 image, mounted noatime; unmounted after the module."""
    image = spare.base / "queue.img"
    directory = spare.base / "fast-queue"
    run(["truncate", "-s", "64M", str(image)])
    run(["mkfs.ext4", "-q", "-F", str(image)])
    queue = {"directory": str(directory), "device": str(image), "fstype": "ext4", "mount_options": ["noatime"]}
    try:
        yield spare.configure(*BASE, {"performance": {"queue": queue}})
    finally:
        spare.instance.stop()
        run(["umount", "--lazy", str(directory)], check=False)


def test_queue_is_on_its_own_noatime_filesystem(moved_site):
    directory = moved_site.postconf("queue_directory")
    assert directory == str(moved_site.base / "fast-queue")
    target, fstype, options = run(["findmnt", "-n", "-o", "TARGET,FSTYPE,OPTIONS", "--target", directory]).stdout.split()
    assert (target, fstype) == (directory, "ext4")
    assert "noatime" in options.split(",")


def test_mail_queued_before_the_move_is_still_queued(moved_site, held_message):
    """Same message, same recipient (its queue id changes: Postfix names queue files after their inode)."""
    queue = moved_site.queue()
    assert [m["recipients"][0]["address"] for m in queue] == [f"someone@{UNREACHABLE[0]}"], queue
    assert held_message in moved_site.queued_message(queue[0]["queue_id"])


def test_mail_flows_through_the_moved_queue(moved_site):
    token = mail.deliver(moved_site.address, USER.address)
    assert len(mail.Maildir(moved_site.maildir(USER.address)).wait_for(token)) == 1
