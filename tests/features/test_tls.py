"""postfix:tls as a mail client sees it: the certificate from pillar, verified
against a CA the test made; AUTH only after STARTTLS; protocols below the
profile's minimum refused; bad certificates refused naming the file."""

import json
import smtplib
import ssl
import stat
import warnings

import pytest

from tests.formula.conftest import PILLAR_EXAMPLE

MAILBOX = ("postmaster@example.com", "CHANGE-ME-MAILBOX")


def tls_layer(**tls):
    return {"postfix": {"tls": {"self_signed": {"enabled": False}, **tls}}}


def client_context(test_ca, version=None):
    """A client that trusts only the test CA; VERSION pins the one TLS version it offers."""
    context = ssl.create_default_context(cafile=str(test_ca.cert_path))
    if version is not None:
        with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is what the refusal is about
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer what the server may refuse
    return context


def starttls_session(instance, context):
    smtp = smtplib.SMTP(timeout=15)
    smtp._host = instance.hostname  # the name starttls() checks the certificate against
    smtp.connect(instance.address, 587)
    smtp.ehlo("client.example.com")
    smtp.starttls(context=context)
    smtp.ehlo("client.example.com")
    return smtp


def handshake_succeeds(instance, test_ca, version):
    try:
        with starttls_session(instance, client_context(test_ca, version)):
            return True
    except ssl.SSLError:
        return False


def mode_and_owner(path):
    info = path.stat()
    return stat.S_IMODE(info.st_mode), info.st_uid


def test_certificate_from_pillar_verified_auth_after_starttls_and_profiles(formula_sandbox, test_ca):
    sandbox = formula_sandbox
    instance = sandbox.instance
    cert, key = test_ca.issue(instance.hostname)
    rc, result = sandbox.apply(PILLAR_EXAMPLE, tls_layer(cert_pem=cert, key_pem=key))
    assert isinstance(result, dict), result
    assert rc == 0, {k: v["comment"] for k, v in result.items() if v["result"] is False}
    assert key.split("\n")[1] not in json.dumps(result), "the private key appears in no state output"

    tls_dir = instance.config_dir / "tls"
    assert mode_and_owner(tls_dir / "server.crt") == (0o644, 0)
    assert mode_and_owner(tls_dir / "server.key") == (0o600, 0)
    main_cf = sandbox.main_cf()
    assert main_cf["smtpd_tls_cert_file"] == str(tls_dir / "server.crt")
    assert main_cf["smtpd_tls_auth_only"] == "yes"
    assert main_cf["smtpd_tls_protocols"] == ">=TLSv1.2"

    with smtplib.SMTP(instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        assert "starttls" in smtp.esmtp_features
        assert "auth" not in smtp.esmtp_features, "no AUTH offered before STARTTLS"
        code, text = smtp.docmd("AUTH", "PLAIN AHBvc3RtYXN0ZXJAZXhhbXBsZS5jb20AQ0hBTkdFLU1FLU1BSUxCT1g=")
        assert code == 503, (code, text)
    with starttls_session(instance, client_context(test_ca)) as smtp:
        assert smtp.sock.getpeercert()["subject"] == ((("commonName", instance.hostname),),)
        assert "auth" in smtp.esmtp_features
        assert smtp.login(*MAILBOX)[0] == 235
        assert smtp.mail(MAILBOX[0])[0] == 250
        assert smtp.rcpt("someone@elsewhere.example.org")[0] == 250
    assert handshake_succeeds(instance, test_ca, ssl.TLSVersion.TLSv1_2)
    assert not handshake_succeeds(instance, test_ca, ssl.TLSVersion.TLSv1_1), "intermediate refuses TLS 1.1"

    sandbox.apply_ok(PILLAR_EXAMPLE, tls_layer(cert_pem=cert, key_pem=key, profile="legacy"))
    assert handshake_succeeds(instance, test_ca, ssl.TLSVersion.TLSv1_1), "legacy (and this client) take TLS 1.1"

    sandbox.apply_ok(PILLAR_EXAMPLE, tls_layer(cert_pem=cert, key_pem=key, profile="modern"))
    assert not handshake_succeeds(instance, test_ca, ssl.TLSVersion.TLSv1_2), "modern is TLS 1.3 only"
    assert handshake_succeeds(instance, test_ca, ssl.TLSVersion.TLSv1_3)
    assert sandbox.apply_ok(PILLAR_EXAMPLE, tls_layer(cert_pem=cert, key_pem=key, profile="modern")) == {}


@pytest.mark.parametrize("problem", ["mismatched key", "expired certificate"])
def test_unusable_certificate_refused_naming_the_file(formula_sandbox, test_ca, problem):
    sandbox = formula_sandbox
    hostname = sandbox.instance.hostname
    if problem == "mismatched key":
        cert_path, _ = test_ca.write("mismatch-cert", hostname)
        _, key_path = test_ca.write("mismatch-other", hostname)
        expected = f"the key in {key_path} does not match the certificate in {cert_path}"
    else:
        cert_path, key_path = test_ca.write("expired", hostname, valid_from=-3, valid_until=-1)
        expected = f"the certificate in {cert_path} expired on"
    before = sandbox.main_cf_bytes()

    rc, result = sandbox.apply({"postfix": {"tls": {"cert": str(cert_path), "key": str(key_path)}}})

    assert rc != 0
    failed = {key: value["comment"] for key, value in result.items() if value["result"] is False}
    assert any(key.startswith("postfix_tls_|-postfix-tls-certificate") and expected in comment
               for key, comment in failed.items()), failed
    assert sandbox.main_cf_bytes() == before, "main.cf is not pointed at an unusable certificate"


def test_self_signed_certificate_for_labs(formula_sandbox):
    sandbox = formula_sandbox
    instance = sandbox.instance
    layer = {"postfix": {"tls": {"self_signed": {"enabled": True, "common_name": instance.hostname}}}}
    sandbox.apply_ok(layer)
    tls_dir = instance.config_dir / "tls"
    assert mode_and_owner(tls_dir / "server.key") == (0o600, 0)
    context = ssl.create_default_context(cafile=str(tls_dir / "server.crt"))
    instance_ctx_session = smtplib.SMTP(instance.address, 25, timeout=15)
    instance_ctx_session._host = instance.hostname
    with instance_ctx_session as smtp:
        smtp.ehlo("client.example.com")
        smtp.starttls(context=context)  # verifies against the self-signed certificate itself
        assert smtp.sock.getpeercert()["subject"] == ((("commonName", instance.hostname),),)
    assert sandbox.apply_ok(layer) == {}, "the self-signed pair is kept on the next apply"
