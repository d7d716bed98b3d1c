"""R2 + R12: a backup MX as other mail servers see it.

The primary (mx1) keeps example.test's mailboxes; the backup (mx2) has its
own postfixadmin database, kept in sync from the primary's with backupmx
set, and relays only for backup domains and known recipients. The test zone
has MX 10 mx1 / MX 20 mx2 for example.test: the backup finds the primary
through those records, not a configured transport.
"""

import time

import pytest

from tests.e2e import mail
from tests.e2e.polling import wait_until
from tests.e2e.topology import ALICE, BACKUP, DOMAIN, PRIMARY

LOCAL_ONLY = "local-only.test"  # a domain the backup's database has, without backupmx


def backup_pillar(primary_database):
    return {
        "relay": {"enabled": True, "sync_from": primary_database},
        "postfixadmin": {"enabled": False},
        "dovecot": {"enabled": False},
        "quota": {"enabled": False},
        "submission": {"enabled": False},
    }


@pytest.fixture(scope="module")
def backup(make_site, primary_host, primary_pillar, pg):
    primary_host.configure(*primary_pillar)
    site = make_site(*BACKUP).configure(backup_pillar(primary_host.database))
    pg.psql(
        f"INSERT INTO domain (domain, description, backupmx, active) VALUES ('{LOCAL_ONLY}', 'local', false, true);"
        f"INSERT INTO alias (address, goto, domain) VALUES ('someone@{LOCAL_ONLY}', 'someone@{LOCAL_ONLY}', '{LOCAL_ONLY}')",
        dbname=site.database["dbname"],
    )
    return site


def test_backup_database_has_the_primarys_users_with_backupmx_set(backup, pg):
    dbname = backup.database["dbname"]
    assert pg.psql(f"SELECT backupmx, active FROM domain WHERE domain = '{DOMAIN}'", dbname) == "t|t"
    assert pg.psql(f"SELECT goto FROM alias WHERE address = '{ALICE.address}'", dbname) == ALICE.address


def test_known_recipient_is_accepted(backup):
    code, text = mail.rcpt_reply(backup.address, ALICE.address)
    assert code == 250, text


def test_unknown_recipient_is_rejected_at_rcpt_without_a_bounce(backup):
    code, text = mail.rcpt_reply(backup.address, f"nobody@{DOMAIN}")
    assert code == 550, text
    assert "User unknown in relay recipient table" in text
    assert backup.queue() == []


@pytest.mark.parametrize("domain", [LOCAL_ONLY, "elsewhere.test"])
def test_domain_that_is_not_a_backup_domain_is_refused_as_relay(backup, domain):
    code, text = mail.rcpt_reply(backup.address, f"someone@{domain}")
    assert code == 554, text
    assert "Relay access denied" in text


def test_backup_relays_to_the_primary_found_through_mx_records(primary, backup, dns):
    assert backup.postconf("relayhost") == ""
    assert backup.postconf("transport_maps") == ""
    token = mail.deliver(backup.address, ALICE.address)
    assert len(mail.Maildir(primary.maildir(ALICE.address)).wait_for(token)) == 1
    assert dns.wait_for_query(DOMAIN, "MX"), "the backup never asked DNS for example.test's MX records"


def test_backup_holds_mail_while_the_primary_is_down_and_delivers_it_once(primary, backup):
    maildir = mail.Maildir(primary.maildir(ALICE.address))
    primary.instance.stop()
    try:
        token = mail.deliver(backup.address, ALICE.address)
        queue = wait_until(backup.queue, lambda q: any(r.get("delay_reason") for m in q for r in m["recipients"]))
        reasons = [r.get("delay_reason", "") for m in queue for r in m["recipients"]]
        assert len(queue) == 1 and f"{PRIMARY[1]}[{PRIMARY[2]}]" in reasons[0], queue
        assert maildir.with_token(token) == []
    finally:
        primary.instance.start()
    backup.flush()
    assert len(maildir.wait_for(token)) == 1
    assert wait_until(backup.queue, lambda q: q == []) == []
    time.sleep(1)
    assert len(maildir.with_token(token)) == 1, "delivered more than once"
