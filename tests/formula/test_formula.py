"""The formula applied with salt-call --local to sandboxed Postfix instances.

Each salt-call costs seconds, so every test makes as few applies as it can
and checks several things after each.
"""

import math
import pathlib
import re
import secrets
import smtplib
import ssl
import stat
import subprocess

import yaml

from tests.formula.conftest import PILLAR_EXAMPLE
from tests.harness.netns import ADDRESSES
from tests.harness.procs import alive
from tests.harness.masterless import changed_states
from tests.harness.sandbox_pillar import create_database, dovecot_dir

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "postfix" / "defaults.yaml").read_text())
#: pillar subtrees whose keys are the user's own (names of parameters, services, domains ...)
FREE_FORM = {"main", "master", "options", "domains", "mailboxes", "aliases", "maps", "lookup_user", "sync_from", "packages"}
STRICT_HELO = ("permit_sasl_authenticated, reject_invalid_helo_hostname, reject_unknown_helo_hostname, "
               "reject_non_fqdn_helo_hostname")
#: a sandbox address no instance gets, so not in any instance's mynetworks
OUTSIDE_CLIENT = ADDRESSES[-1]
#: main.cf's virtual_* parameters and the pgsql tables each names (alias domains as postfixadmin resolves them)
VIRTUAL_MAPS = {
    "virtual_mailbox_domains": ("virtual_mailbox_domains",),
    "virtual_mailbox_maps": ("virtual_mailbox_maps", "virtual_alias_domain_mailbox_maps"),
    "virtual_alias_maps": ("virtual_alias_maps", "virtual_alias_domain_maps", "virtual_alias_domain_catchall_maps"),
}
VIRTUAL_TABLES = tuple(table for tables in VIRTUAL_MAPS.values() for table in tables)


def proxied(tables_dir, tables):
    return ", ".join(f"proxy:pgsql:{tables_dir}/{table}.cf" for table in tables)


def key_paths(tree, prefix=()):
    for key, value in tree.items():
        yield prefix + (key,)
        if isinstance(value, dict) and key not in FREE_FORM:
            yield from key_paths(value, prefix + (key,))


def smtp_reply(instance, rcpt, helo="client.example.com", port=25):
    """EHLO/MAIL/RCPT on INSTANCE from a client outside mynetworks; the (code, text) of the
    first refusal or of RCPT."""
    with smtplib.SMTP(instance.address, port, timeout=15, source_address=(OUTSIDE_CLIENT, 0)) as smtp:
        smtp.ehlo(helo)
        code, text = smtp.mail("sender@example.org")
        if code >= 400:
            return code, text.decode()
        code, text = smtp.rcpt(rcpt)
        return code, text.decode()


def mode_of(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_pillar_example_documents_every_key():
    example = yaml.safe_load(PILLAR_EXAMPLE.read_text())
    assert sorted(key_paths(DEFAULTS)) == sorted(key_paths(example))


def test_requisites_call_functions_not_shell_commands():
    """onlyif/unless entries are `fun:` calls (a string there would run through a shell)."""
    shell_requisites = [
        f"{path.relative_to(REPO)}: {match.group(0).strip()}"
        for path in (REPO / "postfix").rglob("*.sls")
        for match in re.finditer(r"- (onlyif|unless):\s*\n\s*- (?!fun:).*", path.read_text())
    ]
    assert not shell_requisites


def test_pillar_example_primary_mx(formula_sandbox, pg):
    """pillar.example: apply, check, re-apply (no changes), test=True (nothing written), clean."""
    sandbox = formula_sandbox
    instance = sandbox.instance
    host_main_cf = sandbox.main_cf()
    host_services = sandbox.service_lines()

    sandbox.apply_ok(PILLAR_EXAMPLE)

    main_cf = sandbox.main_cf()
    tables_dir = instance.config_dir / "pgsql"
    assert main_cf["smtpd_helo_restrictions"] == STRICT_HELO
    assert main_cf["smtpd_banner"] == "$myhostname ESMTP NO UCE"
    assert main_cf["default_process_limit"] == "75"
    assert main_cf["delay_warning_time"] == "4h", "postfix:main is merged in"
    for parameter, tables in VIRTUAL_MAPS.items():
        assert main_cf[parameter] == proxied(tables_dir, tables)
    for table in VIRTUAL_TABLES:
        assert mode_of(tables_dir / f"{table}.cf") == 0o640
    assert main_cf["virtual_transport"] == "lmtp:unix:private/dovecot-lmtp"
    assert main_cf["smtpd_recipient_restrictions"] == (
        f"check_recipient_access {proxied(tables_dir, ['quota_check'])}, reject_unlisted_recipient")
    assert main_cf["smtpd_reject_unlisted_recipient"] == "no", "the quota check vouches for mailboxes"
    assert main_cf["quota_status"] == f"check_policy_service inet:{instance.address}:12340"
    assert main_cf["virtual_alias_domains"] == ""
    assert mode_of(tables_dir) == 0o750
    assert {(path.owner(), path.group()) for path in (tables_dir, *tables_dir.iterdir())} == {("root", "postfix")}
    assert sandbox.postmap("example.com", tables_dir / "virtual_mailbox_domains.cf") == "example.com"
    assert sandbox.postmap("abuse@example.com", tables_dir / "virtual_alias_maps.cf") == "postmaster@example.com"
    table_text = (tables_dir / "virtual_alias_maps.cf").read_text()
    assert f"user = {sandbox.lookup_user['name']}" in table_text, "tables log in as the read-only lookup role"
    assert sandbox.database["password"] not in table_text
    submission = sandbox.service_lines()["submission/inet"]
    assert submission.startswith("submission inet n - n - - smtpd")
    for option in ("smtpd_tls_security_level=may", "smtpd_sasl_auth_enable=yes",
                   "smtpd_client_restrictions=permit_sasl_authenticated,reject"):
        assert f"-o {option}" in submission
    assert instance.status()
    with smtplib.SMTP(timeout=15) as smtp:
        assert smtp.connect(instance.address, 25) == (220, f"{instance.hostname} ESMTP NO UCE".encode())
        smtp.ehlo("client.example.com")
        assert "vrfy" not in smtp.esmtp_features
        assert smtp.esmtp_features["size"] == "20971520"
        assert smtp.verify("postmaster")[0] == 502
    code, text = smtp_reply(instance, "postmaster@example.com", helo="192.0.23.58")
    assert code >= 400 and "Helo command rejected" in text, "strict HELO restrictions refuse a naked IP"
    code, text = smtp_reply(instance, "postmaster@example.com", port=587)
    assert code == 554 and "Client host rejected: Access denied" in text, "587 needs SASL"
    assert main_cf["smtpd_tls_auth_only"] == "yes", "pillar.example's self-signed certificate: AUTH after STARTTLS"
    with smtplib.SMTP(instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        smtp.starttls(context=ssl._create_unverified_context())
        smtp.login("postmaster@example.com", "CHANGE-ME-MAILBOX")
        assert smtp.mail("postmaster@example.com")[0] == 250
        assert smtp.rcpt("someone@elsewhere.example.org")[0] == 250, "authenticated clients may relay"

    assert sandbox.apply_ok(PILLAR_EXAMPLE) == {}, "a second apply changes nothing"

    written = {path: path.read_bytes() for path in (instance.config_dir / "main.cf", instance.config_dir / "master.cf")}
    change = {"postfix": {"hardening": {"banner": "$myhostname ESMTP changed"},
                          "postfixadmin": {"domains": {"example.net": {"description": "new"}}}}}
    predicted = sandbox.apply_ok(PILLAR_EXAMPLE, change, test=True)
    assert predicted["postconf_|-postfix-config-main-cf_|-" + str(instance.config_dir / "main.cf") + "_|-parameters"][
        "changes"]["smtpd_banner"]["new"] == "$myhostname ESMTP changed"
    assert all(value["result"] is None for value in predicted.values())
    assert {path: path.read_bytes() for path in written} == written
    assert pg.psql("SELECT count(*) FROM domain WHERE domain = 'example.net'", sandbox.database["dbname"]) == "0"

    sandbox.apply_ok(PILLAR_EXAMPLE, sls="postfix.clean")
    assert sandbox.main_cf() == host_main_cf
    assert sandbox.service_lines() == host_services
    assert not list(tables_dir.glob("*.cf"))
    assert instance.status(), "Postfix keeps running after postfix.clean"


def test_pillar_example_over_the_databases_unix_socket(formula_sandbox, pg):
    """database:host a socket directory (libpq's convention, as for PostgreSQL on the mail host):
    the schema, Dovecot and Postfix's lookup tables all connect through it."""
    sandbox = formula_sandbox
    sandbox.database = {**sandbox.database, "host": str(pg.sockdir)}
    no_dns = {"postfix": {"hardening": {"helo_restrictions": "safe"}}}  # strict looks HELO names up
    sandbox.apply_ok(PILLAR_EXAMPLE, no_dns)
    tables_dir = sandbox.instance.config_dir / "pgsql"
    assert {line for table in tables_dir.glob("*.cf") for line in table.read_text().splitlines()
            if line.startswith("hosts = ")} == {f"hosts = unix:{pg.sockdir}"}
    assert smtp_reply(sandbox.instance, "postmaster@example.com")[0] == 250, "the quota check answers"
    assert smtp_reply(sandbox.instance, "abuse@example.com")[0] == 250, "an alias"
    assert smtp_reply(sandbox.instance, "nobody@example.com")[0] == 550
    with smtplib.SMTP(sandbox.instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        smtp.starttls(context=ssl._create_unverified_context())
        assert smtp.login("postmaster@example.com", "CHANGE-ME-MAILBOX")[0] == 235, "Dovecot's SQL"
    assert sandbox.apply_ok(PILLAR_EXAMPLE, no_dns) == {}, "a second apply changes nothing"


def test_backup_mx_relays_only_for_known_recipients(formula_sandbox, pg, postfixadmin_module):
    """R2 alone: a backup MX synced from the primary's database."""
    sandbox = formula_sandbox
    primary, _ = create_database(pg, f"{sandbox.database['dbname']}_primary")
    postfixadmin_module.schema_init(database=primary)
    postfixadmin_module.domain_add("example.com", database=primary)
    postfixadmin_module.alias_add("info@example.com", ["someone@example.org"], database=primary)

    pillar = {"postfix": {"relay": {"enabled": True, "sync_from": primary},
                          "hardening": {"helo_restrictions": ["reject_invalid_hostname"]}}}
    changed = sandbox.apply_ok(pillar, sls="postfix.relay")
    assert any("postfix-relay-database-synced" in key for key in changed)

    main_cf = sandbox.main_cf()
    tables_dir = sandbox.instance.config_dir / "pgsql"
    assert main_cf["relay_domains"] == f"proxy:pgsql:{tables_dir}/relay_domains.cf"
    assert main_cf["relay_recipient_maps"] == f"proxy:pgsql:{tables_dir}/relay_recipient_maps.cf"
    assert main_cf["smtpd_relay_restrictions"].endswith("reject_unauth_destination")
    assert "virtual_mailbox_domains" not in main_cf
    assert sandbox.postmap("example.com", tables_dir / "relay_domains.cf") == "example.com"
    assert sandbox.postmap("info@example.com", tables_dir / "relay_recipient_maps.cf") == "info@example.com"
    assert smtp_reply(sandbox.instance, "info@example.com")[0] == 250
    code, text = smtp_reply(sandbox.instance, "nobody@example.com")
    assert code == 550 and "User unknown in relay recipient table" in text
    code, text = smtp_reply(sandbox.instance, "someone@elsewhere.example.org")
    assert code == 554 and "Relay access denied" in text
    pg.drop_database(primary["dbname"])


def test_submission_alone_refuses_unauthenticated_clients(formula_sandbox):
    """R1 alone: port 587 comes up after the apply and refuses mail without SASL."""
    sandbox = formula_sandbox
    sandbox.instance.start()
    sandbox.apply_ok({"postfix": {"submission": {"enabled": True, "tls_security_level": "encrypt"}}},
                     sls="postfix.submission")
    assert "-o smtpd_tls_security_level=encrypt" in sandbox.service_lines()["submission/inet"]
    with smtplib.SMTP(sandbox.instance.address, 587, timeout=15) as smtp:
        smtp.ehlo("client.example.com")
        code, text = smtp.mail("sender@example.org")
        assert code == 530 and b"STARTTLS" in text, "encrypt: nothing before STARTTLS"


def test_hardening_explicit_list_and_preset(formula_sandbox):
    """R4: the document's old names are written as today's; presets expand."""
    sandbox = formula_sandbox
    old_names = {"postfix": {"hardening": {"helo_restrictions": ["permit_naked_ip_address", "reject_invalid_hostname"],
                                            "message_size_limit": 10485760, "banner": "$myhostname ESMTP"}}}
    sandbox.apply_ok(old_names, sls="postfix.hardening")
    main_cf = sandbox.main_cf()
    assert main_cf["smtpd_helo_restrictions"] == "permit_naked_ip_address, reject_invalid_helo_hostname"
    assert main_cf["message_size_limit"] == "10485760"
    code, text = smtp_reply(sandbox.instance, "someone@elsewhere.example.org", helo="192.0.23.58")
    assert code == 454 and text.endswith("Relay access denied"), "the HELO passed; relay is checked next"
    code, text = smtp_reply(sandbox.instance, "someone@elsewhere.example.org", helo="bogus_name!")
    assert code == 501 and "Helo command rejected: Invalid name" in text

    sandbox.apply_ok({"postfix": {"hardening": {"helo_restrictions": "mynetworks"}}}, sls="postfix.hardening")
    assert sandbox.main_cf()["smtpd_helo_restrictions"] == STRICT_HELO.replace(
        "permit_sasl_authenticated", "permit_mynetworks")
    code, text = smtp_reply(sandbox.instance, "someone@elsewhere.example.org", helo="192.0.23.58")
    assert code >= 400 and "Helo command rejected" in text, "the running Postfix took the new list (R13)"


def test_performance_alone_sizes_the_process_limit(formula_sandbox):
    """R8/R9 alone: biff off, process_limit auto from the minion's memory; postfix.clean then
    leaves alone a Dovecot the formula never set up."""
    sandbox = formula_sandbox
    performance = {"postfix": {"performance": {"process_limit": "auto", "process_memory_mb": 64,
                                               "memory_share": 0.25}}}
    sandbox.apply_ok(performance, sls="postfix.performance")
    mem_total_mb = int(pathlib.Path("/proc/meminfo").read_text().split()[1]) // 1024
    main_cf = sandbox.main_cf()
    assert main_cf["default_process_limit"] == str(max(1, math.floor(mem_total_mb * 0.25 / 64)))
    assert main_cf["biff"] == "no"
    assert sandbox.instance.status(), "postfix.performance starts Postfix"

    others_conf = dovecot_dir(sandbox.instance) / "etc" / "dovecot.conf"
    others_pidfile = dovecot_dir(sandbox.instance) / "run" / "master.pid"
    for path in (others_conf, others_pidfile):
        path.parent.mkdir(parents=True, exist_ok=True)
    others_conf.write_text("# the host's own Dovecot\n")
    others_daemon = subprocess.Popen(["sleep", "300"])
    try:
        others_pidfile.write_text(f"{others_daemon.pid}\n")
        sandbox.apply_ok(performance, sls="postfix.clean")
        assert "default_process_limit" not in sandbox.main_cf()
        assert others_conf.read_text() == "# the host's own Dovecot\n"
        assert alive(others_daemon.pid)
    finally:
        others_pidfile.unlink()
        others_daemon.kill()
        others_daemon.wait()


def test_postfixadmin_alone_accepts_known_mailboxes_only(formula_sandbox, pg):
    """Virtual domains without Dovecot: proxied pgsql tables answer at SMTP time. Any sub-state
    (here postfix.hardening) writes the tables main.cf names; a changed table reloads Postfix."""
    sandbox = formula_sandbox
    pillar = {"postfix": {
        "hardening": {"helo_restrictions": ["reject_invalid_helo_hostname"]},
        "postfixadmin": {"enabled": True,
                         "domains": {"example.com": {"description": "Example"}, "example.org": {}},
                         "mailboxes": {"user@example.com": {"password": "secret-1", "quota": 0}},
                         "aliases": {"sales@example.com": {"goto": ["user@example.com"]}}},
    }}
    changed = sandbox.apply_ok(pillar, sls="postfix.hardening")
    assert "secret-1" not in repr(changed)
    main_cf = sandbox.main_cf()
    assert "virtual_transport" not in main_cf
    assert main_cf["virtual_uid_maps"] == "static:5000"
    tables_dir = sandbox.instance.config_dir / "pgsql"
    assert sorted(path.stem for path in tables_dir.glob("*.cf")) == sorted(VIRTUAL_TABLES)
    assert sandbox.postmap("user@example.com", tables_dir / "virtual_mailbox_maps.cf") == "example.com/user/"
    assert smtp_reply(sandbox.instance, "user@example.com")[0] == 250
    assert smtp_reply(sandbox.instance, "sales@example.com")[0] == 250
    code, text = smtp_reply(sandbox.instance, "nobody@example.com")
    assert code == 550 and "User unknown in virtual mailbox table" in text
    # example.org becomes a postfixadmin alias domain of example.com: its users are example.com's
    pg.psql("INSERT INTO alias_domain (alias_domain, target_domain) VALUES ('example.org', 'example.com')",
            sandbox.database["dbname"])
    assert smtp_reply(sandbox.instance, "user@example.org")[0] == 250
    assert smtp_reply(sandbox.instance, "sales@example.org")[0] == 250
    assert smtp_reply(sandbox.instance, "nobody@example.org")[0] == 550

    sandbox.lookup_user = {"name": f"{sandbox.database['dbname']}_lookup2", "password": secrets.token_urlsafe(12)}
    pg.create_role(sandbox.lookup_user["name"], sandbox.lookup_user["password"])
    changed = sandbox.apply_ok(pillar, sls="postfix.postfixadmin")
    assert not any("postfix-config-main-cf" in key for key in changed)
    reloads = [value["changes"] for key, value in changed.items() if "postfix-service-running" in key]
    assert reloads == [{"postfix": {"old": "running", "new": "reloaded"}}], "proxymap drops the old tables"
    assert smtp_reply(sandbox.instance, "user@example.com")[0] == 250


def test_all_features_together(formula_sandbox):
    """pillar.example plus the backup-MX role and an automatic process limit in one apply."""
    sandbox = formula_sandbox
    together = {"postfix": {"relay": {"enabled": True}, "performance": {"process_limit": "auto"}}}
    sandbox.apply_ok(PILLAR_EXAMPLE, together)
    main_cf = sandbox.main_cf()
    tables_dir = sandbox.instance.config_dir / "pgsql"
    for name, tables in {"relay_domains": ("relay_domains",), "relay_recipient_maps": ("relay_recipient_maps",),
                         **VIRTUAL_MAPS}.items():
        assert main_cf[name] == proxied(tables_dir, tables)
        assert all((tables_dir / f"{table}.cf").exists() for table in tables)
    assert int(main_cf["default_process_limit"]) > 1
    assert "submission/inet" in sandbox.service_lines()
    assert sandbox.instance.status()


#: one invalid pillar per requirement, and the message that must name its key
INVALID_PILLARS = {
    "unknown-preset": ({"hardening": {"helo_restrictions": "paranoid"}},
                       "postfix:hardening:helo_restrictions: unknown preset"),
    "bad-banner": ({"hardening": {"banner": "Welcome to $myhostname ESMTP"}}, "postfix:hardening:banner"),
    "negative-quota": ({"postfixadmin": {"mailboxes": {"postmaster@example.com": {"quota": -1}}}},
                       "postfix:postfixadmin:mailboxes:postmaster@example.com:quota"),
    "process-limit-0": ({"performance": {"process_limit": 0}}, "postfix:performance:process_limit"),
    "vda-on-stock-postfix": ({"quota": {"backend": "vda"}},
                             "postfix:quota:backend: vda needs a Postfix built with the VDA"),
}


def test_invalid_pillar_fails_and_changes_nothing(formula_sandbox):
    """Each bad pillar fails the whole run at render time; the running Postfix is untouched."""
    sandbox = formula_sandbox
    sandbox.instance.start()
    config_files = [sandbox.instance.config_dir / name for name in ("main.cf", "master.cf")]
    before = {path: path.read_bytes() for path in config_files}
    for case, (pillar, message) in INVALID_PILLARS.items():
        rc, result = sandbox.apply(PILLAR_EXAMPLE, {"postfix": pillar})
        assert rc != 0, case
        assert message in str(result), case
        assert {path: path.read_bytes() for path in config_files} == before, case
        assert not (sandbox.instance.config_dir / "pgsql").exists(), case
        assert sandbox.instance.status(), case


def test_package_gives_an_instance_without_main_cf_debians_stock_one(formula_sandbox):
    """Debian's "No configuration" install has no main.cf: postfix.package copies the stock one."""
    sandbox = formula_sandbox
    main_cf = sandbox.instance.config_dir / "main.cf"
    main_cf.unlink()
    # the stock main.cf keeps the queue where this machine's Postfix has it
    stock_queue = {"postfix": {"lookup": {"queue_directory": "/var/spool/postfix"}}}
    sandbox.masterless.set_pillar(sandbox.overlay, stock_queue)
    rc, result = sandbox.masterless.apply("postfix.package")
    assert rc == 0, result
    changed = changed_states(result)
    assert list(changed) == [f"postconf_|-postfix-package-main-cf-present_|-{main_cf}_|-stock_main_cf"], "packages already there"
    assert main_cf.read_bytes() == pathlib.Path("/usr/share/postfix/main.cf.debian").read_bytes()
