"""postfix_tls.self_signed: the lab pair is made once, kept, and remade only when it no longer fits."""

import datetime
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

NAME = "mx1.example.test"


def pair(tmp_path):
    return tmp_path / "tls" / "server.crt", tmp_path / "tls" / "server.key"


def common_name(cert_path):
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_self_signed_makes_a_pair_that_verifies_then_keeps_it(states, tmp_path):
    cert, key = pair(tmp_path)
    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME)
    assert ret.result is True, ret.comment
    assert set(ret.changes) == {"key", "certificate"}
    assert "PRIVATE" not in str(ret.changes), "the key never appears in the output"
    assert (key.stat().st_mode & 0o777, key.stat().st_uid) == (0o600, 0)
    assert (cert.stat().st_mode & 0o777, cert.stat().st_uid) == (0o644, 0)
    context = ssl.create_default_context(cafile=str(cert))
    context.load_cert_chain(str(cert), str(key))  # the key belongs to the certificate
    assert common_name(cert) == NAME
    before = (cert.read_bytes(), key.read_bytes())

    again = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME)
    assert again.result is True and again.changes == {}, again.comment
    assert (cert.read_bytes(), key.read_bytes()) == before


def test_self_signed_remakes_the_certificate_for_a_new_name_keeping_the_key(states, tmp_path):
    cert, key = pair(tmp_path)
    states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME)
    key_before = key.read_bytes()
    predicted = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name="mx2.example.test",
                                               test=True)
    assert predicted.result is None and set(predicted.changes) == {"certificate"}, predicted.comment
    assert common_name(cert) == NAME, "test=True writes nothing"

    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name="mx2.example.test")
    assert ret.result is True and set(ret.changes) == {"certificate"}, ret.comment
    assert "not for mx2.example.test" in ret.comment
    assert common_name(cert) == "mx2.example.test" and key.read_bytes() == key_before


def test_self_signed_renews_a_certificate_expiring_within_days_remaining(states, tmp_path):
    cert, key = pair(tmp_path)
    states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME, days_valid=40)
    old = x509.load_pem_x509_certificate(cert.read_bytes())
    assert states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME, days_valid=40,
                                          days_remaining=30).changes == {}

    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME, days_valid=400,
                                         days_remaining=50)
    assert set(ret.changes) == {"certificate"} and "expires on" in ret.comment, ret.comment
    new = x509.load_pem_x509_certificate(cert.read_bytes())
    assert new.not_valid_after_utc > old.not_valid_after_utc + datetime.timedelta(days=300)


def test_self_signed_replaces_a_key_that_is_not_one_and_fixes_modes(states, tmp_path):
    cert, key = pair(tmp_path)
    key.parent.mkdir()
    key.write_text("not a key\n")
    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME)
    assert ret.result is True and ret.changes["key"] == {"old": "present", "new": "created"}, ret.comment
    serialization.load_pem_private_key(key.read_bytes(), password=None)

    os.chmod(key, 0o644)
    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME)
    assert set(ret.changes) == {"mode"}, ret.comment
    assert key.stat().st_mode & 0o777 == 0o600


def test_self_signed_refuses_bad_arguments_naming_them(states, tmp_path):
    cert, key = pair(tmp_path)
    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name="")
    assert ret.result is False and "common_name ''" in ret.comment
    ret = states.postfix_tls.self_signed(name=str(cert), key=str(key), common_name=NAME, days_valid=10,
                                         days_remaining=30)
    assert ret.result is False and "days_valid (10)" in ret.comment
    assert not cert.parent.exists(), "nothing was written"


def test_certificate_refuses_a_bundle_with_the_key_in_the_world_readable_file(states, tmp_path):
    made_cert, made_key = pair(tmp_path / "made")
    assert states.postfix_tls.self_signed(name=str(made_cert), key=str(made_key), common_name=NAME).result is True
    cert_pem, key_pem = made_cert.read_text(), made_key.read_text()
    cert, key = pair(tmp_path)
    ret = states.postfix_tls.certificate(name=str(cert), key=str(key), cert_pem=cert_pem + key_pem, key_pem=key_pem)
    assert ret.result is False and "holds a private key" in ret.comment
    assert "PRIVATE KEY-----\n" not in ret.comment and key_pem.splitlines()[1] not in str(ret)
    assert not cert.parent.exists(), "nothing was written"
    ret = states.postfix_tls.certificate(name=str(cert), key=str(key), cert_pem=cert_pem, key_pem=key_pem)
    assert ret.result is True and set(ret.changes) == {"certificate", "key"}, ret.comment
