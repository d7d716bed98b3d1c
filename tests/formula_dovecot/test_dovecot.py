"""postfix.dovecot against the sandbox: Dovecot configured from the
postfixadmin database, started by the formula, then used the way Postfix
uses it - SASL auth, LMTP delivery, quota-status - and by IMAP clients."""

import grp
import imaplib
import json
import os
import re
import smtplib
import socket
import ssl
import stat

import pytest

from tests.formula_dovecot.conftest import DB_PASSWORD, MAILBOXES, QUOTA_MESSAGE
from tests.harness.masterless import changed_states
from tests.harness.procs import wait_for_port

ADDRESS = "127.0.0.31"


@pytest.fixture(scope="module")
def site(make_dovecot_site, postfixadmin_db):
    site = make_dovecot_site(postfixadmin_db, ADDRESS)
    rc, result = site.apply("postfix.dovecot")
    assert rc == 0, json.dumps(result, indent=1)
    site.first_result = result
    wait_for_port(ADDRESS, 12340)
    return site


def policy_request(recipient, size):
    """Ask quota-status what Postfix's check_policy_service would."""
    request = f"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient={recipient}\nsize={size}\n\n"
    with socket.create_connection((ADDRESS, 12340), timeout=10) as conn:
        conn.sendall(request.encode())
        answer = b""
        while not answer.endswith(b"\n\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode().strip()


def lmtp_deliver(site, recipient, body):
    lmtp = smtplib.LMTP(str(site.postfix.queue_dir / "private" / "dovecot-lmtp"))
    try:
        lmtp.ehlo("mx1.example.test")
        message = f"From: sender@example.org\r\nTo: {recipient}\r\nSubject: test\r\n\r\n{body}\r\n"
        return lmtp.sendmail("sender@example.org", [recipient], message)
    finally:
        lmtp.quit()


def maildir(site, address):
    local_part, domain = address.split("@")
    return site.mail_root / domain / local_part


def test_first_apply_starts_dovecot(site):
    assert site.first_result["pidfile_service_|-postfix-dovecot-service-running_|-dovecot_|-running"]["changes"]["pid"]
    assert (site.run_dir / "master.pid").exists()
    assert DB_PASSWORD not in json.dumps(site.first_result)


def test_second_apply_changes_nothing(site):
    rc, result = site.apply("postfix.dovecot")
    assert rc == 0
    assert changed_states(result) == {}


def test_sql_config_is_private(site):
    info = (site.dovecot_dir / "dovecot-sql.conf.ext").stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (0, grp.getgrnam("dovecot").gr_gid)


def test_sockets_in_postfix_queue_directory(site):
    for name in ("auth", "dovecot-lmtp"):
        socket_path = site.postfix.queue_dir / "private" / name
        assert stat.S_ISSOCK(socket_path.stat().st_mode), socket_path
        assert socket_path.owner() == "postfix"


def test_sasl_auth_with_postfixadmin_password(site):
    good = site.doveadm("auth", "test", "small@example.test", MAILBOXES["small@example.test"]["password"])
    assert "auth succeeded" in good.stdout
    bad = site.doveadm("auth", "test", "small@example.test", "wrong", check=False)
    assert bad.returncode != 0 and "auth failed" in bad.stdout


def test_lmtp_delivery_writes_maildir_and_maildirsize(site):
    assert lmtp_deliver(site, "roomy@example.test", "hello") == {}
    box = maildir(site, "roomy@example.test")
    assert len(os.listdir(box / "new")) == 1
    assert (box / "maildirsize").read_text().splitlines()[0] == "10000000S"
    assert box.owner() == "vmail"


def test_quota_status_rejects_over_quota(site):
    assert policy_request("small@example.test", 100_000) == f"action=552 5.2.2 {QUOTA_MESSAGE}"
    assert policy_request("small@example.test", 100) == "action=DUNNO"
    assert policy_request("roomy@example.test", 100_000) == "action=DUNNO"


def test_quota_zero_is_unlimited(site):
    assert policy_request("free@example.test", 10**12) == "action=DUNNO"


def test_imap_client_sees_quota(site):
    imap = imaplib.IMAP4(ADDRESS, 143)
    try:
        imap.starttls(ssl._create_unverified_context())
        imap.login("roomy@example.test", MAILBOXES["roomy@example.test"]["password"])
        typ, data = imap.getquotaroot("INBOX")
    finally:
        imap.logout()
    assert typ == "OK"
    # 10_000_000 bytes, in the KiB IMAP counts in (rounded up)
    assert re.fullmatch(rb'"User quota" \(STORAGE \d+ 9766\)', data[1][0])


def test_config_change_reloads_dovecot(site):
    changed = 'Full, "really"'
    rc, result = site.apply("postfix.dovecot", test=True, quota={"message": changed})
    assert rc == 0
    assert result[f"file_|-postfix-dovecot-config-file-managed_|-{site.dovecot_conf}_|-managed"]["result"] is None
    assert QUOTA_MESSAGE in site.dovecot_conf.read_text()
    rc, result = site.apply("postfix.dovecot", quota={"message": changed})
    assert rc == 0
    running = result["pidfile_service_|-postfix-dovecot-service-running_|-dovecot_|-running"]
    assert running["changes"] == {"reloaded": True}
    assert policy_request("small@example.test", 100_000) == f"action=552 5.2.2 {changed}"


def test_invalid_config_is_not_written(site):
    before = site.dovecot_conf.read_text()
    rc, result = site.apply("postfix.dovecot", dovecot={"ssl": {"cert": str(site.base / "missing.pem")}})
    assert rc != 0
    managed = result[f"file_|-postfix-dovecot-config-file-managed_|-{site.dovecot_conf}_|-managed"]
    assert "missing.pem" in managed["comment"]
    assert site.dovecot_conf.read_text() == before
    assert policy_request("roomy@example.test", 100) == "action=DUNNO"


def test_clean_stops_dovecot_and_keeps_mail(site):
    rc, result = site.apply("postfix.dovecot.clean")
    assert rc == 0, json.dumps(result, indent=1)
    assert not site.dovecot_conf.exists()
    assert not (site.dovecot_dir / "dovecot-sql.conf.ext").exists()
    with pytest.raises(OSError):
        socket.create_connection((ADDRESS, 12340), timeout=2)
    assert (maildir(site, "roomy@example.test") / "maildirsize").exists()
