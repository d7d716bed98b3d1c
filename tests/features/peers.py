"""The other side of the features' SMTP sessions: an outside client and a
partner domain's MX (a second sandboxed Postfix) that keeps what it gets."""

import json
import smtplib

import pytest

from tests.harness.netns import ADDRESSES
from tests.harness.procs import run

#: where outside clients connect from (not in mynetworks)
OUTSIDE_CLIENT = ADDRESSES[-1]
#: partner.example's MX
PARTNER_ADDRESS = ADDRESSES[-4]
#: the transport map entry that sends partner.example's mail to its MX
PARTNER_TRANSPORT = {"partner.example": f"smtp:[{PARTNER_ADDRESS}]:25"}


def rcpt(instance, sender, recipient):
    """(code, text) of RCPT TO:RECIPIENT from an outside client, after MAIL FROM:SENDER."""
    with smtplib.SMTP(instance.address, 25, timeout=15, source_address=(OUTSIDE_CLIENT, 0)) as smtp:
        smtp.ehlo("client.example.com")
        assert smtp.mail(sender)[0] == 250
        code, text = smtp.rcpt(recipient)
        return code, text.decode()


@pytest.fixture
def partner_mx(postfix_factory):
    """partner.example's MX, running: it accepts the domain's mail and keeps it in its queue."""
    partner = postfix_factory(hostname="mx.partner.example", address=PARTNER_ADDRESS)
    partner.postconf("-e", "mynetworks = 127.0.0.0/8", "relay_domains = partner.example",
                     "defer_transports = smtp relay")  # kept in its queue, whatever DNS answers
    partner.backdate()
    return partner.start()


def queued(partner):
    """The messages in PARTNER's queue, as postqueue -j describes them."""
    out = run(["postqueue", "-c", str(partner.config_dir), "-j"]).stdout
    return [json.loads(line) for line in out.splitlines()]
