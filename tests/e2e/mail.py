"""What a mail client or another MTA does: SMTP sessions, and reading the maildirs mail lands in."""

import contextlib
import email
import pathlib
import smtplib
import ssl
import uuid

from tests.e2e.polling import wait_until

#: a client outside every instance's mynetworks (127.0.0.1/32)
CLIENT_ADDRESS = "127.0.0.100"
SENDER = "someone@client.example.test"


@contextlib.contextmanager
def session(host, port=25, source=CLIENT_ADDRESS, timeout=20):
    """An SMTP connection from SOURCE; yields (smtp, greeting text)."""
    smtp = smtplib.SMTP(timeout=timeout, source_address=(source, 0))
    smtp._host = host  # connect() below does not record it, and starttls() sends it as the TLS server name
    try:
        code, greeting = smtp.connect(host, port)
        assert code == 220, f"{host}:{port} greeted with {code} {greeting!r}"
        yield smtp, greeting.decode()
    finally:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()


def client_tls_context():
    """A client that takes the sandbox's self-signed certificate, like a mail client told to trust it."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def reply(code_and_text):
    """(code, text) with the text decoded."""
    code, text = code_and_text
    return code, text.decode() if isinstance(text, bytes) else text


def rcpt_reply(host, recipient, helo="client.example.test", sender=SENDER, port=25, source=CLIENT_ADDRESS):
    """The server's answer to RCPT TO after EHLO HELO and MAIL FROM (HELO checks answer here too)."""
    with session(host, port, source) as (smtp, _):
        smtp.ehlo(helo)
        code, text = reply(smtp.mail(sender))
        if code != 250:
            return code, text
        return reply(smtp.rcpt(recipient))


def new_message(recipient, sender=SENDER, size=None):
    """(token, message bytes): the token is in the subject (to find the message in a maildir);
    SIZE pads the body so the message is SIZE bytes long."""
    token = uuid.uuid4().hex
    head = (f"From: {sender}\r\nTo: {recipient}\r\nSubject: e2e {token}\r\n"
            f"Message-ID: <{token}@client.example.test>\r\n\r\nTest message.\r\n")
    padding = max(0, (size or 0) - len(head))
    line = "x" * 76 + "\r\n"
    body = line * (padding // len(line)) + "y" * (padding % len(line))
    return token, (head + body).encode()


def send(smtp, recipient, message, sender=SENDER):
    """MAIL, RCPT, DATA on an open session; returns the (code, text) of the final reply, raising on refusals."""
    code, text = reply(smtp.mail(sender, ["SIZE=%d" % len(message)] if smtp.has_extn("size") else []))
    assert code == 250, f"MAIL FROM refused: {code} {text}"
    code, text = reply(smtp.rcpt(recipient))
    assert code == 250, f"RCPT TO:<{recipient}> refused: {code} {text}"
    return reply(smtp.data(message))


def deliver(host, recipient, port=25, helo="client.example.test", source=CLIENT_ADDRESS):
    """Send one message from another MTA's point of view; returns its token."""
    token, message = new_message(recipient)
    with session(host, port, source) as (smtp, _):
        smtp.ehlo(helo)
        code, text = send(smtp, recipient, message)
    assert code == 250, f"DATA refused: {code} {text}"
    return token


class Maildir:
    """A delivered-to maildir (DIR/new, DIR/cur)."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def messages(self):
        files = [f for sub in ("new", "cur") if (self.path / sub).is_dir() for f in (self.path / sub).iterdir()]
        return [email.message_from_bytes(f.read_bytes()) for f in files]

    def with_token(self, token):
        return [m for m in self.messages() if token in (m["Subject"] or "")]

    def wait_for(self, token, timeout=20.0):
        """The messages carrying TOKEN, waiting up to TIMEOUT for the first one to arrive."""
        return wait_until(lambda: self.with_token(token), timeout=timeout)
