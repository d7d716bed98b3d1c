"""R3: per-mailbox quota from the postfixadmin database, as senders and the mail store see it.

Stock Postfix has no VDA patch, so `backend: auto` means Dovecot's maildir
quota: delivery keeps `maildirsize` in MAIL_ROOT/DOMAIN/USER/, and the
quota-status policy service refuses mail for a full mailbox at RCPT time.
Dovecot copies each mailbox's usage into the database (quota_clone), and
Postfix asks quota-status only about mailboxes near their quota.
"""

from tests.e2e import mail
from tests.e2e.polling import wait_until
from tests.e2e.topology import DOMAIN, ROOMY, SMALL, SPACIOUS, UNLIMITED, UNTOUCHED
from tests.harness.procs import run
from tests.postfixadmin.helpers import run_sql

#: pillar.example's quota:message (quota is enabled there, backend auto)
QUOTA_MESSAGE = "Sorry, the recipients mailbox is currently full. Please try again later."


def deliver_and_wait(site, mailbox, size=None):
    token, message = mail.new_message(mailbox.address, size=size)
    with mail.session(site.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        code, text = mail.send(smtp, mailbox.address, message)
    assert code == 250, text
    delivered = mail.Maildir(site.maildir(mailbox.address)).wait_for(token)
    assert len(delivered) == 1, f"not delivered; maillog:\n{site.instance.log()[-3000:]}"


def test_delivery_writes_maildirsize_in_the_users_directory(primary):
    deliver_and_wait(primary, ROOMY)
    maildirsize = primary.maildir(ROOMY.address) / "maildirsize"
    assert maildirsize.parent.parent.name == DOMAIN and maildirsize.parent.name == "roomy"
    assert maildirsize.exists()
    # first line: the quota definition, here ROOMY's bytes limit from the database
    assert maildirsize.read_text().splitlines()[0] == f"{ROOMY.quota}S"


def test_a_full_mailbox_is_refused_at_rcpt_with_the_quota_message(primary):
    deliver_and_wait(primary, SMALL, size=12000)
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        assert mail.reply(smtp.mail(mail.SENDER, ["SIZE=12000"]))[0] == 250
        code, text = mail.reply(smtp.rcpt(SMALL.address))
    assert 500 <= code < 600, f"{code} {text}"
    assert QUOTA_MESSAGE in text
    assert primary.queue() == [], "a refused recipient must leave nothing queued (no bounce)"


def test_a_mailbox_with_room_still_takes_the_same_message(primary):
    """The refusal above is the quota's doing: the same message is fine for a roomy mailbox."""
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        assert mail.reply(smtp.mail(mail.SENDER, ["SIZE=12000"]))[0] == 250
        assert mail.reply(smtp.rcpt(ROOMY.address))[0] == 250


def test_quota_zero_means_unlimited(primary):
    for _ in range(2):
        deliver_and_wait(primary, UNLIMITED, size=1024 * 1024)


def usage_in_maildirsize(site, mailbox):
    """(bytes, messages) Dovecot counts for MAILBOX: maildirsize's lines after the quota line, summed."""
    lines = (site.maildir(mailbox.address) / "maildirsize").read_text().splitlines()[1:]
    rows = [tuple(int(field) for field in line.split()) for line in lines if line.strip()]
    return sum(row[0] for row in rows), sum(row[1] for row in rows)


def usage_in_database(site, mailbox):
    rows = run_sql(site.database, "SELECT bytes, messages FROM quota_usage WHERE username = %s", (mailbox.address,))
    return rows[0] if rows else None


def asked_about(site, mailbox):
    """What Postfix's quota check answers for MAILBOX through the lookup table main.cf
    names: the restriction class that asks quota-status, or OK (not asked: the mailbox is
    known and has room)."""
    check, *rest = site.postconf("smtpd_recipient_restrictions").split(", ")
    assert rest == ["reject_unlisted_recipient"], rest
    table = check.removeprefix("check_recipient_access ")
    assert table.endswith("/quota_check.cf"), table
    found = run(["postmap", "-c", str(site.instance.config_dir), "-q", mailbox.address, table], check=False)
    assert found.returncode in (0, 1), found.stderr
    return found.stdout.strip() or None


def test_dovecot_copies_each_mailboxs_usage_into_the_database(primary):
    for _ in range(2):
        deliver_and_wait(primary, ROOMY, size=3000)
        copied = wait_until(lambda: usage_in_database(primary, ROOMY) == usage_in_maildirsize(primary, ROOMY),
                            timeout=10)
        assert copied, (usage_in_database(primary, ROOMY), usage_in_maildirsize(primary, ROOMY))
    assert usage_in_database(primary, ROOMY)[1] >= 2


def test_quota_status_is_asked_only_about_mailboxes_near_their_quota(primary):
    limit = int(primary.postconf("message_size_limit"))
    assert primary.postconf("quota_status") == f"check_policy_service inet:{primary.address}:12340"
    deliver_and_wait(primary, SPACIOUS)
    assert wait_until(lambda: usage_in_database(primary, SPACIOUS), timeout=10), "SPACIOUS's usage not copied"
    assert usage_in_database(primary, SPACIOUS)[0] + limit <= SPACIOUS.quota
    assert asked_about(primary, SPACIOUS) == "OK", "room for the largest message: nothing to ask"
    assert asked_about(primary, UNLIMITED) == "OK"
    assert SMALL.quota < limit and asked_about(primary, SMALL) == "quota_status"
    assert usage_in_database(primary, UNTOUCHED) is None
    assert asked_about(primary, UNTOUCHED) == "quota_status", "usage not known yet: ask"
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        assert mail.reply(smtp.mail(mail.SENDER, ["SIZE=12000"]))[0] == 250
        assert mail.reply(smtp.rcpt(SPACIOUS.address))[0] == 250
