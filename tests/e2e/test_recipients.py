"""Which recipients the primary MX takes at RCPT: its active mailboxes and aliases, nobody else.

With pillar.example's quota check one lookup vouches for a mailbox with room
(OK); every other recipient goes through Postfix's own check
(reject_unlisted_recipient), from any client, trusted or not.
"""

import pytest

from tests.e2e import mail
from tests.e2e.topology import ALICE, BOB, DOMAIN
from tests.postfixadmin.helpers import load_module, run_sql

#: pillar.example's alias and the mailbox it forwards to
ALIAS, ALIAS_TARGET = "abuse@example.com", "postmaster@example.com"
#: in mynetworks (the instance's own 127.0.0.1/32): relaying is allowed, validation is not skipped
TRUSTED_CLIENT = "127.0.0.1"
#: a postfixadmin alias domain of DOMAIN (its addresses are DOMAIN's)
ALIAS_DOMAIN = "alias.example.test"


@pytest.mark.parametrize("source", [mail.CLIENT_ADDRESS, TRUSTED_CLIENT])
def test_an_unknown_user_is_refused_at_rcpt(primary, source):
    code, text = mail.rcpt_reply(primary.address, f"nobody@{DOMAIN}", source=source)
    assert code == 550 and "5.1.1" in text and "User unknown" in text, (code, text)
    assert primary.queue() == [], "nothing is queued, so nothing bounces"


def test_a_mailbox_is_taken_and_delivered(primary):
    token = mail.deliver(primary.address, ALICE.address)
    assert len(mail.Maildir(primary.maildir(ALICE.address)).wait_for(token)) == 1


def test_an_alias_is_taken_and_delivered_to_its_mailbox(primary):
    token = mail.deliver(primary.address, ALIAS)
    assert len(mail.Maildir(primary.maildir(ALIAS_TARGET)).wait_for(token)) == 1


@pytest.fixture
def bob_disabled(primary):
    """BOB's mailbox switched off in the database, as postfixadmin's UI does; restored afterwards."""

    def set_active(mailbox, alias):
        run_sql(primary.database, "UPDATE mailbox SET active = %s WHERE username = %s", (mailbox, BOB.address))
        run_sql(primary.database, "UPDATE alias SET active = %s WHERE address = %s", (alias, BOB.address))

    yield set_active
    set_active(True, True)


def test_a_disabled_mailbox_is_refused_at_rcpt(primary, bob_disabled):
    assert mail.rcpt_reply(primary.address, BOB.address)[0] == 250
    bob_disabled(False, False)
    code, text = mail.rcpt_reply(primary.address, BOB.address)
    assert code == 550 and "User unknown" in text, (code, text)


def test_a_disabled_mailbox_whose_alias_is_active_is_still_a_recipient(primary, bob_disabled):
    """Postfix's own check finds the alias, as it did before the quota check vouched for mailboxes."""
    bob_disabled(False, True)
    assert mail.rcpt_reply(primary.address, BOB.address)[0] == 250


def test_an_address_in_capitals_is_the_same_mailbox(primary):
    assert mail.rcpt_reply(primary.address, ALICE.address.upper())[0] == 250


@pytest.fixture
def alias_domain(primary):
    """ALIAS_DOMAIN made an alias domain of DOMAIN in the database, as postfixadmin's UI does; removed afterwards."""
    load_module().domain_add(ALIAS_DOMAIN, database=primary.database)
    run_sql(primary.database, "INSERT INTO alias_domain (alias_domain, target_domain) VALUES (%s, %s)",
            (ALIAS_DOMAIN, DOMAIN))
    yield ALIAS_DOMAIN
    run_sql(primary.database, "DELETE FROM alias_domain WHERE alias_domain = %s", (ALIAS_DOMAIN,))
    run_sql(primary.database, "DELETE FROM domain WHERE domain = %s", (ALIAS_DOMAIN,))


def test_a_mailbox_in_an_alias_domain_is_taken_and_delivered(primary, alias_domain):
    """The quota check does not know the alias domain's address; Postfix's own check does."""
    token = mail.deliver(primary.address, f"alice@{alias_domain}")
    assert len(mail.Maildir(primary.maildir(ALICE.address)).wait_for(token)) == 1
    assert mail.rcpt_reply(primary.address, f"nobody@{alias_domain}")[0] == 550
