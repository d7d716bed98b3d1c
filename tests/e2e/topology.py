"""The sandbox mail network the end-to-end tests share: hosts, the DNS zone, the mail domain and its users."""

import secrets

from tests.e2e.dns import Zone
from tests.harness.netns import E2E_ADDRESSES

#: (minion id, host name, address) of the mail hosts
PRIMARY = ("mx1", "mx1.example.test", E2E_ADDRESSES[0])
BACKUP = ("mx2", "mx2.example.test", E2E_ADDRESSES[1])
#: a stand-alone host for the tests that move its queue and its resolver
SPARE = ("mx3", "mx3.example.test", E2E_ADDRESSES[2])

#: the virtual mail domain the primary hosts and the backup is backup MX for
DOMAIN = "example.test"
#: a fully-qualified HELO name the zone resolves (the document's "example.com" column)
RESOLVABLE_HELO = "example.com"
#: a host with an address where nothing listens: mail for it stays queued
UNREACHABLE = ("down.example.test", E2E_ADDRESSES[3])
#: a name in the zone that only the DNS cache test looks up
CACHE_PROBE = "cache-probe.example.test"

ZONE = Zone(
    hosts={
        **{host: address for _, host, address in (PRIMARY, BACKUP, SPARE)},
        "client.example.test": "127.0.0.100",
        RESOLVABLE_HELO: "127.0.0.77",
        UNREACHABLE[0]: UNREACHABLE[1],
        CACHE_PROBE: "127.0.0.78",
    },
    # R12: several MX records by priority, the backup taking over when the primary is down
    mx={DOMAIN: [(10, PRIMARY[1]), (20, BACKUP[1])]},
)


class Mailbox:
    """A postfixadmin mailbox: its address, plaintext password and quota in bytes (0 unlimited)."""

    def __init__(self, local_part, quota=0, domain=DOMAIN):
        self.address = f"{local_part}@{domain}"
        self.password = secrets.token_urlsafe(12)
        self.quota = quota

    def pillar(self):
        return {"password": self.password, "quota": self.quota}


ALICE = Mailbox("alice")
BOB = Mailbox("bob")
#: quota test mailboxes: 10 MiB, 20000 bytes, unlimited; 100 MiB (over
#: pillar.example's 20 MB message_size_limit) delivered to and never delivered to
ROOMY = Mailbox("roomy", quota=10 * 1024 * 1024)
SMALL = Mailbox("small", quota=20000)
UNLIMITED = Mailbox("unlimited", quota=0)
SPACIOUS = Mailbox("spacious", quota=100 * 1024 * 1024)
UNTOUCHED = Mailbox("untouched", quota=100 * 1024 * 1024)
MAILBOXES = (ALICE, BOB, ROOMY, SMALL, UNLIMITED, SPACIOUS, UNTOUCHED)


def mail_domain_pillar(*mailboxes, domain=DOMAIN):
    """Pillar for a host that keeps DOMAIN's mailboxes (postfixadmin database + Dovecot delivery)."""
    return {
        "postfixadmin": {
            "enabled": True,
            "domains": {domain: {"description": "end-to-end test domain"}},
            "mailboxes": {mailbox.address: mailbox.pillar() for mailbox in mailboxes},
        },
        "dovecot": {"enabled": True},
    }
