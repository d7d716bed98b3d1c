"""Both ways with postfixadmin's own code (Debian 12's postfixadmin 3.3 under
php-cli, no web server): postfixadmin on a database the module made, the
module on a database postfixadmin made, and Dovecot authenticating the
mailboxes either made."""

import datetime

import pytest

from .helpers import LOOKUP, LOOKUP_PASSWORD, QUERIES, run_sql
from .test_lookup import write_table

PASSWORD = "Secret-pw12"  # postfixadmin's password rules: at least 2 digits
#: postfixadmin's quota_multiplier: its "MB" in bytes
MB = 1024000


def stored_password(database, address):
    return run_sql(database, "SELECT password FROM mailbox WHERE username = %s", (address,))[0][0]


def password_expiry(database, address):
    return run_sql(database, "SELECT password_expiry FROM mailbox WHERE username = %s", (address,))[0][0]


def cli_add_domain(code, domain, *options):
    code.cli("domain", "add", domain, "--default-aliases", "0", *options)


def cli_add_mailbox(code, address, password=PASSWORD, *options):
    code.cli("mailbox", "add", address, "--password", password, "--password2", password, "--welcome-mail", "0",
             *options)


# --- postfixadmin on a database the module made ------------------------------


@pytest.fixture
def module_made(pfa, database):
    pfa.schema_init(database=database)
    pfa.domain_add("example.test", description="Example", maxquota=10, quota=100, password_expiry=30,
                   database=database)
    pfa.mailbox_add("alice@example.test", PASSWORD, full_name="Alice", quota=5 * MB, database=database)
    pfa.alias_add("info@example.test", ["alice@example.test"], database=database)
    return database


def test_postfixadmin_lists_and_shows_what_the_module_made(module_made, postfixadmin_code):
    code = postfixadmin_code(module_made)
    domains = code.listing("domain")
    assert list(domains) == ["example.test"]
    assert (domains["example.test"]["description"], domains["example.test"]["mailbox_count"]) == ("Example", 1)
    assert domains["example.test"]["password_expiry"] == 30
    mailboxes = code.listing("mailbox", "example.test")
    assert list(mailboxes) == ["alice@example.test"]
    assert (mailboxes["alice@example.test"]["name"], mailboxes["alice@example.test"]["quota"]) == ("Alice", 5)

    _, domain_view = code.cli("domain", "view", "example.test")
    assert "Description: Example" in domain_view and "Pass expires: 30" in domain_view
    _, mailbox_view = code.cli("mailbox", "view", "alice@example.test")
    assert "Name: Alice" in mailbox_view and "Quota: 5\n" in mailbox_view
    expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)).date().isoformat()
    assert f"Pass expires: {expires}" in mailbox_view


def test_postfixadmin_cli_adds_a_mailbox_to_a_module_made_domain(pfa, module_made, postfixadmin_code):
    code = postfixadmin_code(module_made, quota="YES")
    cli_add_mailbox(code, "bob@example.test", PASSWORD, "--name", "Bob", "--quota", "10")
    bob = pfa.mailbox_get("bob@example.test", database=module_made)
    assert (bob["full_name"], bob["quota"], bob["maildir"]) == ("Bob", 10 * MB, "example.test/bob/")
    assert pfa.alias_get("bob@example.test", database=module_made)["goto"] == ["bob@example.test"]
    assert pfa.mailbox_check_password("bob@example.test", PASSWORD, database=module_made) is True
    assert pfa.mailbox_check_password("bob@example.test", "Wrong-pw12", database=module_made) is False
    # The domain's maxquota (10) is in postfixadmin's own units: 11 is over it.
    _, output = code.cli("mailbox", "add", "carol@example.test", "--password", PASSWORD, "--password2",
                              PASSWORD, "--quota", "11", "--welcome-mail", "0", check=False)
    assert "Error" in output and pfa.mailbox_get("carol@example.test", database=module_made) is None
    # password_expiry: the module sets what postfixadmin sets (now + the domain's 30 days).
    assert abs(password_expiry(module_made, "bob@example.test")
               - password_expiry(module_made, "alice@example.test")) <= datetime.timedelta(minutes=1)


@pytest.mark.parametrize(
    "encrypt, postfixadmin_encrypt",
    [
        ("dovecot:SHA512-CRYPT", "dovecot:SHA512-CRYPT"),
        ("dovecot:SHA512-CRYPT", "php_crypt:SHA512::{SHA512-CRYPT}"),
        ("php_crypt:SHA512::{SHA512-CRYPT}", "php_crypt:SHA512::{SHA512-CRYPT}"),
        ("md5crypt", "md5crypt"),
        ("php_crypt", "php_crypt"),
        ("php_crypt:SHA256:6000", "php_crypt:SHA256:6000"),
        ("php_crypt:BLOWFISH:8:{BLF-CRYPT}", "php_crypt:BLOWFISH:8:{BLF-CRYPT}"),
        ("dovecot:BLF-CRYPT", "dovecot:BLF-CRYPT"),
    ],
)
def test_postfixadmins_login_accepts_module_made_passwords(pfa, module_made, postfixadmin_code, encrypt,
                                                          postfixadmin_encrypt):
    pfa.mailbox_add("dave@example.test", PASSWORD, encrypt=encrypt, database=module_made)
    code = postfixadmin_code(module_made, encrypt=postfixadmin_encrypt)
    assert code.login("dave@example.test", PASSWORD) is True
    assert code.login("dave@example.test", "Wrong-pw12") is False


def test_the_default_format_does_not_suit_postfixadmins_own_default(module_made, postfixadmin_code):
    """Why the pillar names postfixadmin's encrypt: with its default md5crypt, the module's
    default {SHA512-CRYPT} hashes do not log in (choose encrypt: md5crypt there)."""
    assert postfixadmin_code(module_made, encrypt="md5crypt").login("alice@example.test", PASSWORD) is False


def test_postfixadmins_setup_then_still_finds_nothing_to_do(module_made, postfixadmin_code):
    assert "Database is up to date: 1847/1847" in postfixadmin_code(module_made).upgrade()


# --- the module on a database postfixadmin made -------------------------------


@pytest.fixture
def postfixadmin_made(postfixadmin_database, postfixadmin_code):
    code = postfixadmin_code(postfixadmin_database)
    cli_add_domain(code, "example.test", "--description", "Made by postfixadmin")
    cli_add_domain(code, "backup.test", "--backupmx", "1")
    cli_add_mailbox(code, "alice@example.test", PASSWORD, "--name", "Alice", "--quota", "5")
    code.cli("alias", "add", "info@example.test", "--goto", "alice@example.test")
    return postfixadmin_database


def test_module_crud_on_a_postfixadmin_made_database(pfa, postfixadmin_made, postfixadmin_code):
    db = postfixadmin_made
    assert pfa.schema_pending(database=db) == {"created": [], "version": None, "granted": []}
    assert [d["domain"] for d in pfa.domain_list(database=db)] == ["backup.test", "example.test"]
    alice = pfa.mailbox_get("alice@example.test", database=db)
    assert (alice["full_name"], alice["quota"]) == ("Alice", 5 * MB)
    assert stored_password(db, "alice@example.test").startswith("$1$")  # postfixadmin's md5crypt
    assert pfa.mailbox_check_password("alice@example.test", PASSWORD, database=db) is True
    assert pfa.mailbox_check_password("alice@example.test", "Wrong-pw12", database=db) is False
    assert pfa.alias_get("info@example.test", database=db)["goto"] == ["alice@example.test"]

    pfa.mailbox_add("bob@example.test", PASSWORD, quota=2 * MB, encrypt="md5crypt", database=db)
    pfa.alias_update("info@example.test", goto=["alice@example.test", "bob@example.test"], database=db)
    pfa.mailbox_update("alice@example.test", password="Newer-pw34", encrypt="md5crypt", database=db)
    code = postfixadmin_code(db)
    assert code.login("alice@example.test", "Newer-pw34") is True
    assert code.login("bob@example.test", PASSWORD) is True
    assert "Quota: 2\n" in code.cli("mailbox", "view", "bob@example.test")[1]
    assert sorted(code.listing("mailbox", "example.test")) == ["alice@example.test", "bob@example.test"]

    assert pfa.mailbox_delete("bob@example.test", database=db) is True
    assert code.cli("mailbox", "view", "bob@example.test", check=False)[1].count("Error") == 1
    assert pfa.domain_delete("backup.test", database=db) is True
    assert list(code.listing("domain")) == ["example.test"]


@pytest.mark.parametrize(
    "postfixadmin_encrypt, form",
    [
        ("md5crypt", "$1$"),
        ("php_crypt", "$6$"),
        ("php_crypt:SHA256", "$5$"),
        ("php_crypt:BLOWFISH", "$2y$"),
        ("php_crypt:SHA512::{SHA512-CRYPT}", "{SHA512-CRYPT}$6$"),
        ("dovecot:SHA512-CRYPT", "{SHA512-CRYPT}$6$"),
        ("dovecot:BLF-CRYPT", "{BLF-CRYPT}$2y$"),
        ("sha512.b64", "{SHA512-CRYPT.B64}"),
    ],
)
def test_hashes_postfixadmin_writes_are_taken_as_hashes(pfa, postfixadmin_made, postfixadmin_code,
                                                       postfixadmin_encrypt, form):
    db = postfixadmin_made
    cli_add_mailbox(postfixadmin_code(db, encrypt=postfixadmin_encrypt), "hashed@example.test")
    written = stored_password(db, "hashed@example.test")
    assert written.startswith(form)
    pfa.mailbox_add("copy@example.test", written, database=db)
    assert stored_password(db, "copy@example.test") == written
    assert pfa.mailbox_check_password("copy@example.test", PASSWORD, database=db) is True
    assert pfa.mailbox_check_password("copy@example.test", "Wrong-pw12", database=db) is False
    assert pfa.mailbox_check_password("copy@example.test", written, database=db) is True


def test_a_postfixadmin_database_syncs_to_a_backup_and_answers_postmap(
    pfa, postfixadmin_made, other_database, postmap_config, tmp_path
):
    pfa.schema_init(lookup_user=LOOKUP, database=other_database)
    changes = pfa.sync_backup(postfixadmin_made, other_database)
    assert changes["domains"]["added"] == ["example.test"]  # backup.test is a backup domain on the primary too
    assert changes["mailboxes"]["added"] == ["alice@example.test"]
    lookup = {**other_database, "user": LOOKUP, "password": LOOKUP_PASSWORD}
    tables = {name: write_table(tmp_path / f"{name}.cf", QUERIES[name]["query"], lookup)
              for name in ("relay_domains", "relay_recipient_maps")}
    config_dir = str(postmap_config)
    assert pfa.lookup(tables["relay_domains"], "example.test", config_dir=config_dir) == "example.test"
    assert pfa.lookup(tables["relay_domains"], "backup.test", config_dir=config_dir) is None
    for known in ("alice@example.test", "info@example.test"):
        assert pfa.lookup(tables["relay_recipient_maps"], known, config_dir=config_dir) == known
    assert pfa.lookup(tables["relay_recipient_maps"], "nobody@example.test", config_dir=config_dir) is None


# --- Dovecot ------------------------------------------------------------------


def test_dovecot_authenticates_mailboxes_made_by_either(pfa, postfixadmin_made, postfixadmin_code, dovecot):
    db = postfixadmin_made
    run_sql(db, "UPDATE domain SET password_expiry = 30 WHERE domain = 'example.test'")
    cli_add_mailbox(postfixadmin_code(db, encrypt="dovecot:SHA512-CRYPT"), "pfa-sha@example.test")
    pfa.mailbox_add("module@example.test", PASSWORD, database=db)
    pfa.mailbox_add("module-md5@example.test", PASSWORD, encrypt="md5crypt", database=db)
    pfa.mailbox_add("module-blf@example.test", PASSWORD, encrypt="php_crypt:BLOWFISH", database=db)
    server = dovecot(db)
    made = ["alice@example.test", "pfa-sha@example.test", "module@example.test", "module-md5@example.test",
            "module-blf@example.test"]
    # alice's password was set before the domain got an expiry: postfixadmin gave her 365 days too.
    assert {address: server.authenticates(address, PASSWORD) for address in made} == dict.fromkeys(made, True)
    assert server.authenticates("module@example.test", "Wrong-pw12") is False
    # The query refuses expired passwords: what mailboxes left at the column default would get.
    run_sql(db, "UPDATE mailbox SET password_expiry = DEFAULT WHERE username = 'module@example.test'")
    assert server.authenticates("module@example.test", PASSWORD) is False
