"""postfix:relayhost: mail to an outside domain goes to a smarthost that
requires AUTH, with the pillar's credentials, which no output and no
world-readable file shows."""

import json
import smtplib
import ssl
import stat

import pytest

from tests.e2e.polling import wait_until
from tests.features.smarthost import PASSWORD, USERNAME, Smarthost
from tests.formula.conftest import PILLAR_EXAMPLE
from tests.harness.netns import ADDRESSES

SMARTHOST_ADDRESS = ADDRESSES[-3]
MAILBOX = ("postmaster@example.com", "CHANGE-ME-MAILBOX")


def submit(instance, recipient):
    with smtplib.SMTP(instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.login(*MAILBOX)
        smtp.sendmail(MAILBOX[0], [recipient], f"From: {MAILBOX[0]}\r\nTo: {recipient}\r\nSubject: t\r\n\r\nhi\r\n")


@pytest.fixture
def smarthost(postfix_factory, test_ca):
    host = Smarthost(postfix_factory(hostname="smarthost.test", address=SMARTHOST_ADDRESS), test_ca).create()
    yield host
    host.stop()


def test_outside_mail_goes_to_the_smarthost_with_sasl(formula_sandbox, smarthost):
    with smtplib.SMTP(SMARTHOST_ADDRESS, 587, timeout=15) as smtp:
        smtp.ehlo("mx1.example.test")
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.ehlo("mx1.example.test")
        smtp.mail("someone@example.com")
        assert smtp.rcpt("friend@outside.example")[0] == 554, "the smarthost relays for nobody without AUTH"

    sandbox = formula_sandbox
    layer = {"postfix": {"relayhost": {"host": f"[{SMARTHOST_ADDRESS}]:587", "username": USERNAME,
                                       "password": PASSWORD}}}
    rc, result = sandbox.apply(PILLAR_EXAMPLE, layer)
    assert rc == 0, {k: v["comment"] for k, v in result.items() if v["result"] is False}
    assert PASSWORD not in json.dumps(result), "the relay password appears in no state output"

    main_cf = sandbox.main_cf()
    assert main_cf["relayhost"] == f"[{SMARTHOST_ADDRESS}]:587"
    assert main_cf["smtp_sasl_auth_enable"] == "yes"
    assert main_cf["smtp_sasl_security_options"] == "noanonymous"
    assert main_cf["smtp_tls_security_level"] == "encrypt"
    password_map = sandbox.instance.config_dir / "maps" / "relayhost_sasl_passwd"
    assert main_cf["smtp_sasl_password_maps"] == f"${{default_database_type}}:{password_map}"
    for path in (password_map, password_map.with_name(password_map.name + ".db")):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0), path
    for path in sandbox.instance.base.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & stat.S_IROTH:
            assert PASSWORD.encode() not in path.read_bytes(), f"{path} is world-readable and holds the password"

    submit(sandbox.instance, "friend@outside.example")
    queued = wait_until(smarthost.queued, timeout=30)
    assert queued == [{"sender": MAILBOX[0], "recipients": ["friend@outside.example"]}], smarthost.maillog()
    assert f"sasl_username={USERNAME}" in smarthost.maillog()
    assert sandbox.apply_ok(PILLAR_EXAMPLE, layer) == {}, "a second apply changes nothing"


def test_relayhost_password_without_username_refused(formula_sandbox):
    rc, result = formula_sandbox.apply({"postfix": {"relayhost": {"host": "[smtp.example.net]:587",
                                                                  "password": "pw-not-shown"}}})
    assert rc != 0
    text = json.dumps(result)
    assert "pillar postfix:relayhost:username" in text
    assert "pw-not-shown" not in text
