"""R5-R7 as a client sees them: no VRFY, the banner, the 20 MiB size limit (hardening defaults of pillar.example)."""

from tests.e2e import mail
from tests.e2e.topology import ALICE as RECIPIENT

SIZE_LIMIT = 20971520


def test_greeting_is_exactly_the_configured_banner(primary):
    with mail.session(primary.address) as (_, greeting):
        assert greeting == f"{primary.hostname} ESMTP NO UCE"


def test_ehlo_does_not_offer_vrfy(primary):
    with mail.session(primary.address) as (smtp, _):
        code, _ = smtp.ehlo("client.example.test")
        assert code == 250
        assert smtp.esmtp_features, "EHLO listed no extensions at all"
        assert "vrfy" not in smtp.esmtp_features


def test_vrfy_is_refused_with_502(primary):
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        code, text = mail.reply(smtp.docmd("VRFY", RECIPIENT.address))
    assert code == 502, text
    assert "VRFY command is disabled" in text


def test_ehlo_advertises_a_20_mib_size_limit(primary):
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        assert smtp.esmtp_features.get("size") == str(SIZE_LIMIT)


def test_message_just_under_20_mib_is_accepted(primary):
    _, message = mail.new_message(RECIPIENT.address, size=SIZE_LIMIT - 8192)
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        code, text = mail.send(smtp, RECIPIENT.address, message)
    assert code == 250, text


def test_message_announced_over_20_mib_is_refused_with_552(primary):
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        code, text = mail.reply(smtp.mail(mail.SENDER, [f"SIZE={SIZE_LIMIT + 1}"]))
    assert code == 552, text
    assert "exceeds fixed" in text


def test_message_just_over_20_mib_is_refused_with_552(primary):
    """A client that does not announce the size: Postfix counts while receiving and refuses at the end of DATA."""
    _, message = mail.new_message(RECIPIENT.address, size=SIZE_LIMIT + 1024)
    with mail.session(primary.address) as (smtp, _):
        smtp.ehlo("client.example.test")
        assert mail.reply(smtp.mail(mail.SENDER))[0] == 250
        assert mail.reply(smtp.rcpt(RECIPIENT.address))[0] == 250
        code, text = mail.reply(smtp.data(message))
    assert code == 552, text
    assert "message file too big" in text
