"""What a mail client sees of a fresh host: the port 25 banner, and a message
submitted with AUTH on 587 arriving in the recipient's maildir inside the host."""

import pathlib
import ssl

import yaml

from tests.e2e.mail import Maildir, new_message, send, session

PILLAR_EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "pillar.example"


def example_mailbox():
    """The first mailbox pillar.example creates: (address, password)."""
    mailboxes = yaml.safe_load(PILLAR_EXAMPLE.read_text())["postfix"]["postfixadmin"]["mailboxes"]
    address, fields = next(iter(mailboxes.items()))
    return address, fields["password"]


def banner(host):
    """The greeting on port 25, without the 220."""
    with session(host.address, 25) as (_, greeting):
        return greeting


def submit_and_read(host, timeout=30.0):
    """Log in on 587 as pillar.example's mailbox, send to it, and return the
    messages that arrived in its maildir under the host's mail root."""
    address, password = example_mailbox()
    token, message = new_message(address, sender=address)
    with session(host.address, 587) as (smtp, _):
        smtp.ehlo("client.example.test")
        # pillar.example has a certificate: AUTH only after STARTTLS
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.ehlo("client.example.test")
        assert smtp.has_extn("auth"), f"587 offers no AUTH: {smtp.esmtp_features}"
        smtp.login(address, password)
        code, text = send(smtp, address, message, sender=address)
    assert code == 250, f"DATA refused: {code} {text}"
    local_part, domain = address.split("@")
    return Maildir(host.root / "var" / "vmail" / domain / local_part).wait_for(token, timeout=timeout)
