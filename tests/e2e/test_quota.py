"""R3: per-mailbox quota from the postfixadmin database, as senders and the mail store see it.

Stock Postfix has no VDA patch, so `backend: auto` means Dovecot's maildir
quota: delivery keeps `maildirsize` in MAIL_ROOT/DOMAIN/USER/, and the
quota-status policy service refuses mail for a full mailbox at RCPT time.
"""

from tests.e2e import mail
from tests.e2e.topology import DOMAIN, ROOMY, SMALL, UNLIMITED

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
