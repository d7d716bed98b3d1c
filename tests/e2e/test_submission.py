"""R1: the submission service on 587 as a mail client sees it.

STARTTLS, then AUTH with the mailbox password kept in the postfixadmin
database (checked by Dovecot), then the message lands in the recipient's
maildir. Unauthenticated clients and wrong passwords are refused; with
tls_security_level encrypt, AUTH is impossible before STARTTLS.
"""

import smtplib

import pytest

from tests.e2e import mail
from tests.e2e.topology import ALICE, BOB

SUBMISSION = 587


@pytest.fixture
def encrypting_site(primary_host, primary_pillar):
    """The primary with submission tls_security_level: encrypt (pillar.example has `may`)."""
    return primary_host.configure(*primary_pillar, {"submission": {"tls_security_level": "encrypt"}})


def starttls(smtp):
    smtp.ehlo("laptop.example.test")
    code, text = mail.reply(smtp.starttls(context=mail.client_tls_context()))
    assert code == 220, text
    smtp.ehlo("laptop.example.test")


def test_submission_offers_starttls_then_auth(primary):
    with mail.session(primary.address, SUBMISSION) as (smtp, _):
        smtp.ehlo("laptop.example.test")
        assert "starttls" in smtp.esmtp_features
        starttls(smtp)
        assert {"PLAIN", "LOGIN"} <= set(smtp.esmtp_features.get("auth", "").split())


def test_authenticated_client_sends_and_mail_lands_in_the_maildir(primary):
    token, message = mail.new_message(BOB.address, sender=ALICE.address)
    with mail.session(primary.address, SUBMISSION) as (smtp, _):
        starttls(smtp)
        code, text = mail.reply(smtp.login(ALICE.address, ALICE.password))
        assert code == 235, text
        code, text = mail.send(smtp, BOB.address, message, sender=ALICE.address)
    assert code == 250, text
    delivered = mail.Maildir(primary.maildir(BOB.address)).wait_for(token)
    assert len(delivered) == 1, f"not delivered to {primary.maildir(BOB.address)}; maillog:\n{primary.instance.log()[-3000:]}"
    # Postfix notes TLS + SASL (ESMTPSA) in the Received header it adds
    assert "ESMTPSA" in " ".join(delivered[0].get_all("Received"))


def test_unauthenticated_client_is_refused(primary):
    with mail.session(primary.address, SUBMISSION) as (smtp, _):
        starttls(smtp)
        assert mail.reply(smtp.mail(mail.SENDER))[0] == 250
        code, text = mail.reply(smtp.rcpt(BOB.address))
    assert code == 554, text
    assert "Access denied" in text


def test_wrong_password_is_refused(primary):
    with mail.session(primary.address, SUBMISSION) as (smtp, _):
        starttls(smtp)
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            smtp.login(ALICE.address, ALICE.password + "-wrong")
    assert refused.value.smtp_code == 535


def test_encrypt_offers_no_auth_before_starttls(encrypting_site):
    with mail.session(encrypting_site.address, SUBMISSION) as (smtp, _):
        smtp.ehlo("laptop.example.test")
        assert "starttls" in smtp.esmtp_features
        assert "auth" not in smtp.esmtp_features
        code, text = mail.reply(smtp.docmd("AUTH", "PLAIN AGFsaWNlAHNlY3JldA=="))
    assert code == 530, text
    assert "STARTTLS" in text


def test_encrypt_still_lets_a_client_authenticate_after_starttls(encrypting_site):
    token, message = mail.new_message(BOB.address, sender=ALICE.address)
    with mail.session(encrypting_site.address, SUBMISSION) as (smtp, _):
        starttls(smtp)
        assert mail.reply(smtp.login(ALICE.address, ALICE.password))[0] == 235
        code, text = mail.send(smtp, BOB.address, message, sender=ALICE.address)
    assert code == 250, text
    assert len(mail.Maildir(encrypting_site.maildir(BOB.address)).wait_for(token)) == 1
