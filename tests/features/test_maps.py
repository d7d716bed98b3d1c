"""postfix:maps and postfix:aliases over real SMTP: a transport map entry
routes mail, sender_access and pcre entries reject, a changed entry takes
effect on the next apply, secret maps stay secret, aliases deliver."""

import json
import smtplib
import ssl
import stat

from tests.e2e.polling import wait_until
from tests.features.peers import OUTSIDE_CLIENT, PARTNER_TRANSPORT, queued, rcpt
from tests.formula.conftest import PILLAR_EXAMPLE

MAILBOX = ("postmaster@example.com", "CHANGE-ME-MAILBOX")
SECRET_VALUE = "OK-but-do-not-show-9f2"


def maps_layer(junk_action, block_action):
    return {"postfix": {
        "hardening": {"helo_restrictions": "safe"},  # no DNS here for the strict HELO checks
        "main": {"transport_maps": "maps:transport", "smtpd_sender_restrictions":
                 "check_sender_access maps:sender_access, check_recipient_access maps:recipient_patterns"},
        "maps": {
            "transport": {"entries": PARTNER_TRANSPORT},
            "sender_access": {"type": "hash", "entries": {"junk@bad.example": junk_action}},
            "recipient_patterns": {"type": "pcre", "entries": {"/^block-/": block_action, "/^gone-/": None}},
            "client_secrets": {"secret": True, "entries": {"198.51.100.7": SECRET_VALUE}},
        },
        "aliases": {"team": ["postmaster@example.com"]},
    }}


def partner_queue(partner):
    return [[r["address"] for r in message["recipients"]] for message in queued(partner)]


def test_transport_sender_access_pcre_secret_and_aliases(formula_sandbox, partner_mx):
    partner = partner_mx
    sandbox = formula_sandbox
    instance = sandbox.instance
    maps_dir = instance.config_dir / "maps"

    rc, result = sandbox.apply(PILLAR_EXAMPLE, maps_layer("REJECT sender refused", "REJECT blocked by pattern"))
    assert rc == 0, {k: v["comment"] for k, v in result.items() if v["result"] is False}
    assert SECRET_VALUE not in json.dumps(result), "a secret map's values appear in no output"
    secret = maps_dir / "client_secrets"
    for path in (secret, secret.with_name("client_secrets.db")):
        info = path.stat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (0o600, 0)
    main_cf = sandbox.main_cf()
    assert main_cf["transport_maps"] == f"${{default_database_type}}:{maps_dir}/transport"
    assert main_cf["smtpd_sender_restrictions"] == (
        f"check_sender_access hash:{maps_dir}/sender_access, check_recipient_access pcre:{maps_dir}/recipient_patterns")

    code, text = rcpt(instance, "junk@bad.example", "postmaster@example.com")
    assert code == 554 and "sender refused" in text
    code, text = rcpt(instance, "someone@good.example", "block-me@example.com")
    assert code == 554 and "blocked by pattern" in text
    assert rcpt(instance, "someone@good.example", "postmaster@example.com")[0] == 250

    with smtplib.SMTP(instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.login(*MAILBOX)
        smtp.sendmail(MAILBOX[0], ["someone@partner.example"], b"Subject: routed\r\n\r\nby the transport map\r\n")
    assert wait_until(lambda: partner_queue(partner), timeout=30) == [["someone@partner.example"]], \
        "the transport map sent partner.example's mail to the partner's MX"

    code, _ = rcpt(instance, "someone@good.example", f"team@{instance.hostname}")
    assert code == 250, "an alias is a local recipient"
    assert rcpt(instance, "someone@good.example", f"nobody-here@{instance.hostname}")[0] == 550
    new_mail = instance.base / "vmail" / "example.com" / "postmaster" / "new"
    with smtplib.SMTP(instance.address, 25, timeout=15, source_address=(OUTSIDE_CLIENT, 0)) as smtp:
        smtp.ehlo("client.example.com")
        smtp.sendmail("someone@good.example", [f"team@{instance.hostname}"], b"Subject: alias\r\n\r\nto the team\r\n")
    assert wait_until(lambda: new_mail.is_dir() and any(new_mail.iterdir()), timeout=30), \
        "mail to the alias reached its target's mailbox"

    database = maps_dir / "sender_access.db"
    built = database.stat().st_mtime_ns
    assert sandbox.apply_ok(PILLAR_EXAMPLE, maps_layer("REJECT sender refused", "REJECT blocked by pattern")) == {}
    assert database.stat().st_mtime_ns == built, "an unchanged map is not postmapped again"

    changed = sandbox.apply_ok(PILLAR_EXAMPLE, maps_layer("OK", "DUNNO"))
    assert SECRET_VALUE not in json.dumps(changed)
    assert wait_until(lambda: rcpt(instance, "junk@bad.example", "postmaster@example.com")[0] == 250), \
        "the changed sender_access entry (hash, postmapped) applies"
    code, text = rcpt(instance, "someone@good.example", "block-me@example.com")
    assert (code, "blocked by pattern" in text) == (550, False), "the changed pcre entry applies (Postfix reloaded)"
    assert "User unknown" in text

    sandbox.apply_ok(PILLAR_EXAMPLE, {"postfix": {"hardening": {"helo_restrictions": "safe"}}})
    assert not (maps_dir / "client_secrets").exists(), "a map dropped from pillar is removed"
    assert not (maps_dir / "client_secrets.db").exists()

    sandbox.apply_ok(PILLAR_EXAMPLE, sls="postfix.clean")
    assert not maps_dir.exists(), "postfix.clean removes the static maps"
    assert not list((instance.config_dir / "tls").iterdir()), "and the self-signed pair it made"


def test_unknown_map_reference_and_bad_type_refused(formula_sandbox):
    before = formula_sandbox.main_cf_bytes()
    rc, result = formula_sandbox.apply({"postfix": {"main": {"transport_maps": "maps:nosuch"}}})
    assert rc != 0 and "pillar postfix:main:transport_maps: names maps:nosuch" in json.dumps(result)
    rc, result = formula_sandbox.apply({"postfix": {"maps": {"x": {"type": "dbm", "entries": {"a": "b"}}}}})
    assert rc != 0 and "pillar postfix:maps:x:type" in json.dumps(result)
    assert formula_sandbox.main_cf_bytes() == before
