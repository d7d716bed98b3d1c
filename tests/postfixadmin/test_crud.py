"""Domains, mailboxes and aliases against a real PostgreSQL database."""

import datetime
import os
import re
import subprocess

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from .helpers import run_sql

MAX_QUOTA = 9223372036854774784


def stored_password(database, address):
    return run_sql(database, "SELECT password FROM mailbox WHERE username = %s", (address,))[0][0]


def password_expiry(database, address):
    return run_sql(database, "SELECT password_expiry FROM mailbox WHERE username = %s", (address,))[0][0]


def doveadm_verifies(stored, password):
    proc = subprocess.run(["doveadm", "pw", "-t", stored], input=f"{password}\n", capture_output=True, text=True)
    return proc.returncode == 0


def test_domain_round_trip(pfa, schema):
    added = pfa.domain_add("Example.TEST", description="Example", maxquota=2048, backupmx=False, database=schema)
    assert added["domain"] == "example.test"
    assert (added["description"], added["maxquota"], added["backupmx"], added["active"]) == ("Example", 2048, False, True)
    assert [d["domain"] for d in pfa.domain_list(database=schema)] == ["example.test"]

    changes = pfa.domain_update("example.test", backupmx=True, transport="relay:[mx1.example.test]", database=schema)
    assert changes == {
        "backupmx": {"old": False, "new": True},
        "transport": {"old": None, "new": "relay:[mx1.example.test]"},
    }
    assert pfa.domain_update("example.test", backupmx=True, database=schema) == {}
    assert pfa.domain_get("example.test", database=schema)["backupmx"] is True

    assert pfa.domain_delete("example.test", database=schema) is True
    assert pfa.domain_get("example.test", database=schema) is None
    assert pfa.domain_delete("example.test", database=schema) is False


def test_domain_add_twice_is_refused(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    with pytest.raises(CommandExecutionError, match="domain example.test already exists"):
        pfa.domain_add("example.test", database=schema)


def test_mailbox_round_trip_hashes_the_password_and_keeps_the_self_alias(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    added = pfa.mailbox_add("Alice@Example.test", "correct horse", full_name="Alice", quota=1073741824, database=schema)
    assert (added["username"], added["full_name"]) == ("alice@example.test", "Alice")
    assert run_sql(schema, "SELECT name FROM mailbox") == [("Alice",)]  # postfixadmin's column
    assert (added["maildir"], added["local_part"], added["domain"]) == ("example.test/alice/", "alice", "example.test")
    assert "password" not in added and "password" not in pfa.mailbox_list(database=schema)[0]

    stored = stored_password(schema, "alice@example.test")
    assert stored.startswith("{SHA512-CRYPT}$6$") and "correct horse" not in stored
    assert doveadm_verifies(stored, "correct horse") and not doveadm_verifies(stored, "wrong")
    assert pfa.mailbox_check_password("alice@example.test", "correct horse", database=schema) is True
    assert pfa.mailbox_check_password("alice@example.test", "wrong", database=schema) is False
    assert pfa.alias_get("alice@example.test", database=schema)["goto"] == ["alice@example.test"]

    changes = pfa.mailbox_update("alice@example.test", password="battery staple", active=False, database=schema)
    assert changes == {"active": {"old": True, "new": False}, "password": {"old": "********", "new": "********"}}
    assert doveadm_verifies(stored_password(schema, "alice@example.test"), "battery staple")
    assert pfa.alias_get("alice@example.test", database=schema)["active"] is False

    assert pfa.mailbox_delete("alice@example.test", database=schema) is True
    assert pfa.mailbox_get("alice@example.test", database=schema) is None
    assert pfa.alias_get("alice@example.test", database=schema) is None


@pytest.mark.parametrize(
    "hashed",
    [
        "{BLF-CRYPT}$2y$05$ugTIfuUZgrjI8f1FS46PPOCyjINADQA2PNnOEgUUj6ZJG1FUbutnS",
        "$1$c9809462$XSmI1JfAw4SYG5VmdSRMr/",
        "$2y$10$ugTIfuUZgrjI8f1FS46PPOCyjINADQA2PNnOEgUUj6ZJG1FUbutnS",
        "$5$rounds=6000$Eb1W3B5Ndk6w5SHs$k8LwgCNN0KnvKnj5SK/b9YKrNiUEFNaBnhxo2Ix6Q35",
    ],
)
def test_prehashed_password_is_stored_as_is(pfa, schema, hashed):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("bob@example.test", hashed, database=schema)
    assert stored_password(schema, "bob@example.test") == hashed
    assert pfa.mailbox_check_password("bob@example.test", hashed, database=schema) is True


@pytest.fixture
def no_doveadm(tmp_path, monkeypatch):
    """A doveadm first on PATH that only records its arguments (and fails): the file of calls."""
    calls = tmp_path / "doveadm-calls"
    fake = tmp_path / "bin" / "doveadm"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    return calls


@pytest.mark.parametrize(
    "encrypt, form",
    [
        (None, r"\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}"),
        ("php_crypt:SHA512::{SHA512-CRYPT}", r"\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}"),
        ("md5crypt", r"\$1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}"),
        ("php_crypt", r"\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}"),
        ("php_crypt:SHA256:6000", r"\$5\$rounds=6000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{43}"),
        ("dovecot:BLF-CRYPT", r"\{BLF-CRYPT\}\$2y\$\d\d\$[./0-9A-Za-z]{53}"),
        ("dovecot:MD5-CRYPT", r"\{MD5-CRYPT\}\$1\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{22}"),
    ],
)
def test_passwords_are_hashed_and_verified_without_doveadm(pfa, schema, no_doveadm, encrypt, form):
    """On a fresh minion Dovecot is not installed yet; and the stored hash never goes on a
    command line (where ps shows it): a doveadm that only records its arguments is never asked."""
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("carol@example.test", "s3cret pass", encrypt=encrypt, database=schema)
    pfa.mailbox_add("dave@example.test", "s3cret pass", encrypt=encrypt, database=schema)
    stored = stored_password(schema, "carol@example.test")
    assert re.fullmatch(form, stored)
    assert stored != stored_password(schema, "dave@example.test")  # a random salt each
    assert pfa.mailbox_check_password("carol@example.test", "s3cret pass", database=schema) is True
    assert pfa.mailbox_check_password("carol@example.test", "s3cret pas", database=schema) is False
    assert not no_doveadm.exists()
    os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]  # the real doveadm agrees
    as_dovecot_reads_it = stored if stored.startswith("{") else "{CRYPT}" + stored
    assert doveadm_verifies(as_dovecot_reads_it, "s3cret pass")
    assert not doveadm_verifies(as_dovecot_reads_it, "s3cret pas")


def test_the_hash_format_comes_from_config(pfa, schema, loaders):
    pfa.domain_add("example.test", database=schema)
    loaders.opts["postfixadmin"] = {"encrypt": "md5crypt"}
    try:
        pfa.mailbox_add("erin@example.test", "pw", database=schema)
    finally:
        del loaders.opts["postfixadmin"]
    assert stored_password(schema, "erin@example.test").startswith("$1$")


@pytest.mark.parametrize("encrypt", ["md5", "cleartext", "system", "dovecot:ARGON2I", "php_crypt:DES",
                                     "php_crypt:SHA512:many", "php_crypt:SHA512::SHA512-CRYPT"])
def test_an_unsupported_hash_format_is_refused_naming_it(pfa, schema, encrypt):
    pfa.domain_add("example.test", database=schema)
    with pytest.raises(SaltInvocationError, match=f"unsupported encrypt '{re.escape(encrypt)}'"):
        pfa.mailbox_add("frank@example.test", "pw", encrypt=encrypt, database=schema)
    assert pfa.mailbox_get("frank@example.test", database=schema) is None


def test_password_expiry_is_set_as_postfixadmin_sets_it(pfa, schema):
    pfa.domain_add("expiring.test", password_expiry=30, database=schema)
    pfa.domain_add("lasting.test", database=schema)
    pfa.mailbox_add("a@expiring.test", "pw", database=schema)
    pfa.mailbox_add("a@lasting.test", "pw", database=schema)
    days = dict(run_sql(schema, """SELECT username, date_trunc('minute', now()) + interval '1 minute'
                                   - password_expiry FROM mailbox"""))
    assert datetime.timedelta(days=-30) < days["a@expiring.test"] <= datetime.timedelta(days=-30, minutes=1)
    assert datetime.timedelta(days=-365) < days["a@lasting.test"] <= datetime.timedelta(days=-365, minutes=1)

    run_sql(schema, "UPDATE mailbox SET password_expiry = '2000-01-01'")
    pfa.mailbox_update("a@expiring.test", full_name="No new password", database=schema)
    assert password_expiry(schema, "a@expiring.test").year == 2000
    pfa.mailbox_update("a@expiring.test", password="new pw", database=schema)
    assert password_expiry(schema, "a@expiring.test") > datetime.datetime.now(datetime.timezone.utc)
    assert pfa.mailbox_get("a@expiring.test", database=schema)["password_expiry"].startswith(
        password_expiry(schema, "a@expiring.test").isoformat()[:16])


def test_mailbox_needs_its_domain(pfa, schema):
    with pytest.raises(CommandExecutionError, match="domain nowhere.test does not exist"):
        pfa.mailbox_add("a@nowhere.test", "pw", database=schema)


def test_alias_round_trip_with_catch_all(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    alias = pfa.alias_add("info@example.test", ["Alice@example.test", "bob@example.org", "alice@example.test"],
                          database=schema)
    assert alias["goto"] == ["alice@example.test", "bob@example.org"]
    assert run_sql(schema, "SELECT goto FROM alias WHERE address = 'info@example.test'") == [
        ("alice@example.test,bob@example.org",)
    ]
    assert pfa.alias_update("info@example.test", goto="bob@example.org,alice@example.test", database=schema) == {}
    assert pfa.alias_update("info@example.test", goto=["carol@example.test"], database=schema) == {
        "goto": {"old": ["alice@example.test", "bob@example.org"], "new": ["carol@example.test"]}
    }
    pfa.alias_add("@example.test", ["carol@example.test"], database=schema)
    assert [a["address"] for a in pfa.alias_list("example.test", database=schema)] == [
        "@example.test", "info@example.test"
    ]
    assert pfa.alias_delete("info@example.test", database=schema) is True
    assert pfa.alias_get("info@example.test", database=schema) is None


def test_alias_delete_refuses_a_mailbox(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("alice@example.test", "pw", database=schema)
    with pytest.raises(CommandExecutionError, match="is a mailbox"):
        pfa.alias_delete("alice@example.test", database=schema)
    assert pfa.alias_get("alice@example.test", database=schema) is not None


def test_domain_delete_takes_its_mailboxes_and_aliases(pfa, schema):
    for domain in ("example.test", "other.test"):
        pfa.domain_add(domain, database=schema)
        pfa.mailbox_add(f"alice@{domain}", "pw", database=schema)
        pfa.alias_add(f"info@{domain}", [f"alice@{domain}"], database=schema)
    pfa.domain_delete("example.test", database=schema)
    assert [m["username"] for m in pfa.mailbox_list(database=schema)] == ["alice@other.test"]
    assert [a["address"] for a in pfa.alias_list(database=schema)] == ["alice@other.test", "info@other.test"]


@pytest.mark.parametrize("quota", [0, 1, MAX_QUOTA])
def test_quota_bounds_accepted(pfa, schema, quota):
    pfa.domain_add("example.test", database=schema)
    assert pfa.mailbox_add("q@example.test", "pw", quota=quota, database=schema)["quota"] == quota


@pytest.mark.parametrize("quota", [MAX_QUOTA + 1, -1, True, "10", 1.5, None])
def test_quota_out_of_bounds_refused_and_nothing_written(pfa, schema, quota):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("q@example.test", "pw", quota=5, database=schema)
    with pytest.raises(SaltInvocationError, match="quota must be an integer from 0 to 9223372036854774784"):
        pfa.mailbox_add("r@example.test", "pw", quota=quota, database=schema)
    with pytest.raises(SaltInvocationError, match="quota"):
        pfa.mailbox_update("q@example.test", quota=quota, database=schema)
    assert [(m["username"], m["quota"]) for m in pfa.mailbox_list(database=schema)] == [("q@example.test", 5)]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda pfa, db: pfa.domain_add("bad_domain.test", database=db), "invalid domain name: 'bad_domain.test'"),
        (lambda pfa, db: pfa.domain_add("localhost", database=db), "invalid domain name"),
        (lambda pfa, db: pfa.domain_add("-x.test", database=db), "invalid domain name"),
        (lambda pfa, db: pfa.domain_add("x.test", backupmx="yes", database=db), "backupmx must be true or false: 'yes'"),
        (lambda pfa, db: pfa.domain_add("x.test", aliases=-2, database=db), "aliases must be an integer"),
        (lambda pfa, db: pfa.domain_add("x.test", description="a\nb", database=db), "description must be text"),
        (lambda pfa, db: pfa.domain_update("x.test", colour="red", database=db), "unknown domain field"),
        (lambda pfa, db: pfa.mailbox_add("no-at.example.test", "pw", database=db), "invalid address"),
        (lambda pfa, db: pfa.mailbox_add("a b@example.test", "pw", database=db), "invalid address"),
        (lambda pfa, db: pfa.mailbox_add("a..b@example.test", "pw", database=db), "invalid address"),
        (lambda pfa, db: pfa.mailbox_add("@example.test", "pw", database=db), "invalid address"),
        (lambda pfa, db: pfa.mailbox_add("x/.y@example.test", "pw", database=db), "cannot contain '/'"),
        (lambda pfa, db: pfa.mailbox_add("a@example.test", "", database=db), "password must be non-empty"),
        (lambda pfa, db: pfa.mailbox_add("a@example.test", "x\ny", database=db), "password must be non-empty"),
        (lambda pfa, db: pfa.mailbox_update("a@example.test", name="A", database=db), "unknown mailbox field.* name;"),
        (lambda pfa, db: pfa.alias_add("a@example.test", [], database=db), "goto must be a non-empty list"),
        (lambda pfa, db: pfa.alias_add("a@example.test", ["not an address"], database=db), "invalid address"),
    ],
)
def test_bad_input_is_refused_naming_the_value(pfa, schema, call, message):
    with pytest.raises(SaltInvocationError, match=message.replace("(", r"\(")):
        call(pfa, schema)
    assert run_sql(schema, "SELECT count(*) FROM domain") == [(0,)]


@pytest.mark.parametrize(
    "hostile",
    [
        "x.test'; DROP TABLE mailbox; --",
        "x.test' OR '1'='1",
        "x.test\x00",
    ],
)
def test_injection_in_a_domain_name_is_refused(pfa, schema, hostile):
    pfa.domain_add("victim.test", database=schema)
    with pytest.raises(SaltInvocationError, match="invalid domain name"):
        pfa.domain_update(hostile, active=False, database=schema)
    assert pfa.domain_get("victim.test", database=schema)["active"] is True
    assert len(run_sql(schema, "SELECT * FROM mailbox")) == 0


def test_quotes_in_values_are_stored_literally_and_touch_no_other_row(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("victim@example.test", "pw", full_name="Victim", database=schema)
    hostile = "x'or'1'='1@example.test"  # quotes and = are legal in a local part
    pfa.mailbox_add(hostile, "pw", full_name="'); DELETE FROM alias; --", database=schema)
    pfa.mailbox_update(hostile, full_name="x', name='pwned", quota=7, database=schema)
    assert pfa.mailbox_get(hostile, database=schema)["full_name"] == "x', name='pwned"
    victim = pfa.mailbox_get("victim@example.test", database=schema)
    assert (victim["full_name"], victim["quota"]) == ("Victim", 0)
    assert len(pfa.alias_list(database=schema)) == 2
    pfa.mailbox_delete(hostile, database=schema)
    assert [m["username"] for m in pfa.mailbox_list(database=schema)] == ["victim@example.test"]


def test_settings_come_from_config_when_not_passed(pfa, schema, loaders):
    loaders.opts["postfixadmin"] = {"database": schema}
    try:
        pfa.domain_add("config.test")
        assert pfa.domain_get("config.test", database=schema)["domain"] == "config.test"
    finally:
        del loaders.opts["postfixadmin"]


def test_connection_errors_never_show_the_password(pfa, schema):
    wrong = {**schema, "password": "N0t-The-Right-0ne"}
    with pytest.raises(CommandExecutionError) as error:
        pfa.domain_list(database=wrong)
    assert "password authentication failed" in str(error.value)
    assert "N0t-The-Right-0ne" not in str(error.value)


def test_a_database_without_the_schema_reads_as_empty(pfa, database):
    assert pfa.domain_list(database=database) == []
    assert pfa.domain_get("example.test", database=database) is None
    assert pfa.mailbox_list("example.test", database=database) == []
    assert pfa.mailbox_get("alice@example.test", database=database) is None
    assert pfa.mailbox_check_password("alice@example.test", "pw", database=database) is False
    assert pfa.alias_list(database=database) == []
    assert pfa.alias_get("@example.test", database=database) is None
    with pytest.raises(CommandExecutionError, match='relation "domain" does not exist'):
        pfa.domain_add("example.test", database=database)
    assert run_sql(database, "SELECT to_regclass('domain')") == [(None,)]


def test_mailbox_over_an_existing_alias_is_refused(pfa, schema):
    pfa.domain_add("example.test", database=schema)
    pfa.alias_add("info@example.test", ["x@example.org"], database=schema)
    with pytest.raises(CommandExecutionError, match="alias info@example.test already exists"):
        pfa.mailbox_add("info@example.test", "pw", database=schema)
    assert pfa.mailbox_list(database=schema) == []
