"""postfix_checks: every value bound for Dovecot's, the DNS cache's and the
lookup tables' files is checked before a state runs."""

import copy
import pathlib

import pytest
import yaml
from salt.exceptions import SaltInvocationError

from tests.harness import salt_modules

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "postfix" / "defaults.yaml").read_text())["postfix"]
EXAMPLE = yaml.safe_load((REPO / "pillar.example").read_text())["postfix"]

checks = salt_modules.load("modules", "postfix_checks")
records = salt_modules.load("modules", "postfix_records")


def settings(*overrides):
    """defaults.yaml, pillar.example and OVERRIDES merged as map.jinja does (lookup:config_dir filled in)."""
    merged = records.merge(copy.deepcopy(DEFAULTS), EXAMPLE, *overrides)
    merged["config_dir"] = merged["config_dir"] or merged["lookup"]["config_dir"]
    return merged


def at(key, value):
    """{"a": {"b": VALUE}} for key "a:b"."""
    tree = value
    for part in reversed(key.split(":")):
        tree = {part: tree}
    return tree


def test_defaults_and_pillar_example_pass():
    assert checks.settings(settings()) is True
    assert checks.settings(settings(), defaults=DEFAULTS) is True
    assert checks.settings(records.merge(copy.deepcopy(DEFAULTS), {"config_dir": "/etc/postfix"})) is True


GOOD = {
    "database:host": ["db.example.com", "127.0.0.1", "::1", "/var/run/postgresql"],
    "database": [None],
    "database:port": [1, 5432, 65535],
    "database:sslmode": [None, "disable", "verify-full"],
    "database:password": [None, "with inner space", "quote' and \\ backslash"],
    "relay:sync_from": [None, {"host": "mx1.example.com", "port": 5432, "dbname": "postfixadmin",
                               "user": "sync", "password": "x", "sslmode": "require"}],
    "dovecot:log_path": ["syslog", "/var/log/dovecot.log"],
    "dovecot:password_scheme": ["SHA512-CRYPT", "ARGON2ID", "BLF-CRYPT"],
    "dovecot:auth_socket": ["private/auth", "dovecot-auth"],
    "dovecot:imap_listen:address": ["*", "127.0.0.1", "imap.example.com"],
    "dovecot:ssl:cert": [None, "/etc/ssl/certs/mail.pem"],
    "performance:dns_cache:forwarders": [[], ["192.0.2.53", "192.0.2.54@5353", "2001:db8::1"]],
    "performance:dns_cache:forward_local_zones": [["test", "example.test"]],
    "performance:queue:directory": [None, "/srv/postfix-queue"],
}


@pytest.mark.parametrize("key,value", [(key, value) for key, values in GOOD.items() for value in values])
def test_good_values_pass(key, value):
    assert checks.settings(settings(at(key, value))) is True


#: class of bad input -> (key, bad value, the words the error must hold)
BAD = {
    "newline-in-dovecot-path": ("dovecot:log_path", "/var/log/d.log\nauth_verbose_passwords = plain",
                                "contains a control character"),
    "newline-in-main-cf-value": ("main:delay_warning_time", "4h\nrelayhost = evil", "control character"),
    "tab-in-database-name": ("database:dbname", "postfix\tadmin", "control character"),
    "control-character-in-a-key": ("postfixadmin:domains", {"bad\x00.example": {}}, "control character"),
    "port-not-a-number": ("database:port", "abc", "must be a port number"),
    "port-too-big": ("database:port", 99999, "must be a port number"),
    "port-zero": ("dovecot:imap_listen:port", 0, "must be a port number"),
    "port-boolean": ("dovecot:quota_status_listen:port", True, "must be a port number"),
    "port-70000": ("dovecot:quota_status_listen:port", 70000, "must be a port number"),
    "sync-port": ("relay:sync_from", {"host": "mx1.example.com", "port": "5432x", "dbname": "p", "user": "u"},
                  "relay:sync_from:port: must be a port number"),
    "relative-path": ("dovecot:mail_root", "var/vmail", "must be an absolute path"),
    "path-with-space": ("dovecot:base_dir", "/run/dove cot", "must be an absolute path"),
    "path-with-brace": ("dovecot:state_dir", "/var/lib/dovecot }", "must be an absolute path"),
    "relative-log-path": ("dovecot:log_path", "dovecot.log", "must be an absolute path"),
    "relative-ssl-key": ("dovecot:ssl:key", "mail.key", "must be an absolute path"),
    "relative-resolv-conf": ("performance:dns_cache:resolv_conf", "resolv.conf", "must be an absolute path"),
    "relative-queue-directory": ("performance:queue:directory", "spool2", "must be an absolute path"),
    "relative-tables-dir": ("postfixadmin:tables_dir", "pgsql", "must be an absolute path"),
    "absolute-auth-socket": ("dovecot:auth_socket", "/var/spool/postfix/private/auth",
                             "must be relative to Postfix's queue_directory"),
    "absolute-lmtp-socket": ("dovecot:lmtp_socket", "/run/lmtp", "must be relative to Postfix's queue_directory"),
    "socket-escaping-the-queue": ("dovecot:lmtp_socket", "../lmtp", "without . or .. parts"),
    "empty-socket": ("dovecot:auth_socket", "", "must be a relative path"),
    "sslmode": ("database:sslmode", "on", "must be one of disable, allow, prefer, require, verify-ca, verify-full"),
    "sync-sslmode": ("relay:sync_from", {"host": "h", "port": 5432, "dbname": "p", "user": "u", "sslmode": "yes"},
                     "relay:sync_from:sslmode: must be one of"),
    "password-scheme": ("dovecot:password_scheme", "SHA512CRYPT", "must be one of ARGON2I"),
    "dns-cache-backend": ("performance:dns_cache:backend", "bind", "must be one of unbound, dnsmasq"),
    "database-host": ("database:host", "db host;", "must be a host name or an IP address"),
    "listen-address": ("dovecot:quota_status_listen:address", "127.0.0.1 port", "must be a host name"),
    "dns-cache-listen": ("performance:dns_cache:listen", "localhost", "must be an IP address"),
    "forwarder": ("performance:dns_cache:forwarders", ["192.0.2.53 ; evil"], "must be an IP address"),
    "forwarder-port": ("performance:dns_cache:forwarders", ["192.0.2.53@99999"], "must be an IP address"),
    "local-zone": ("performance:dns_cache:forward_local_zones", ['test" evil'], "must be a DNS zone name"),
    "vmail-uid": ("dovecot:vmail_uid", "5000", "must be a positive integer"),
    "vmail-user": ("dovecot:vmail_user", "v mail", "must be a user or group name"),
    "empty-dbname": ("database:dbname", "", "must be a non-empty text"),
    "database-not-a-mapping": ("database", "postgres://x", "must be a mapping"),
}


@pytest.mark.parametrize("key,value,problem", BAD.values(), ids=BAD.keys())
def test_bad_values_are_refused_naming_the_key(key, value, problem):
    with pytest.raises(SaltInvocationError) as error:
        checks.settings(settings(at(key, value)))
    message = str(error.value)
    assert message.startswith(f"pillar postfix:{key}"), message
    assert problem in message


def test_a_socket_directory_needs_proxymap():
    """Debian's chrooted smtpd cannot reach the socket; the postmap -q proof would not notice."""
    socket = at("database:host", "/var/run/postgresql")
    assert checks.settings(settings(socket)) is True
    with pytest.raises(SaltInvocationError, match=r"^pillar postfix:postfixadmin:proxy: must be true while "
                                                  r"database:host is a socket directory"):
        checks.settings(settings(socket, at("postfixadmin:proxy", False)))
    assert checks.settings(settings(at("postfixadmin:proxy", False))) is True, "over TCP it may be off"


#: (key, bad secret): control characters anywhere; surrounding whitespace where a lookup table holds it
BAD_SECRETS = [
    ("database:password", "pw-with-newline\nhidden"),
    ("postfixadmin:lookup_user:password", "pw-with-newline\nhidden"),
    ("postfixadmin:mailboxes:postmaster@example.com:password", "pw-with-newline\nhidden"),
    ("relay:sync_from:password", "pw-with-newline\nhidden"),
    ("database:password", " leading-space-secret"),
    ("postfixadmin:lookup_user:password", "trailing-space-secret "),
]


@pytest.mark.parametrize("key,secret", BAD_SECRETS)
def test_bad_passwords_are_never_shown(key, secret):
    overrides = [at(key, secret)]
    if key.startswith("relay:sync_from"):
        overrides.insert(0, at("relay:sync_from", {"host": "mx1.example.com", "port": 5432, "dbname": "p",
                                                   "user": "u"}))
    with pytest.raises(SaltInvocationError) as error:
        checks.settings(settings(*overrides))
    message = str(error.value)
    assert message.startswith(f"pillar postfix:{key}: ")
    assert "value not shown" in message
    assert secret.strip().split("\n")[0] not in message and "hidden" not in message


def test_checked_settings_are_kept_for_the_run_as_copies(monkeypatch):
    monkeypatch.setattr(checks, "__context__", {}, raising=False)
    assert checks.kept("postfix:base") is None
    built = settings()
    assert checks.settings(built, keep="postfix:base") is True
    kept = checks.kept("postfix:base")
    assert kept == built and kept is not built
    kept["config_dir"] = "/elsewhere"  # an sls changing its copy changes no other sls's
    assert checks.kept("postfix:base")["config_dir"] == built["config_dir"]
    assert checks.kept("other:base") is None


def test_bad_settings_are_not_kept(monkeypatch):
    monkeypatch.setattr(checks, "__context__", {}, raising=False)
    with pytest.raises(SaltInvocationError):
        checks.settings(settings(at("database", "postgres://x")), keep="postfix:base")
    assert checks.kept("postfix:base") is None


#: pillar keys that are not the formula's, or not of the kind defaults.yaml's are: (override, key, problem)
NOT_LIKE_DEFAULTS = {
    "typo-top-level": ({"mains": {"biff": "no"}}, "mains", "is not a setting of this formula (under postfix: it"),
    "typo-enabled": (at("submission:enable", True), "submission:enable",
                     "is not a setting of this formula (under postfix:submission: it knows client_restrictions, "
                     "enabled,"),
    "typo-nested": (at("dovecot:ssl:crt", "/etc/ssl/c.pem"), "dovecot:ssl:crt", "it knows cert, key"),
    "typo-helo": (at("hardening:helo_restriction", "safe"), "hardening:helo_restriction", "it knows banner,"),
    "quoted-false-dovecot": (at("dovecot:enabled", "false"), "dovecot:enabled",
                             "must be true or false (unquoted), got 'false'"),
    "quoted-false-dns-cache": (at("performance:dns_cache:enabled", "no"), "performance:dns_cache:enabled",
                               "must be true or false"),
    "quoted-false-allow-remote": (at("performance:dns_cache:allow_remote", "false"),
                                  "performance:dns_cache:allow_remote", "must be true or false"),
    "quoted-false-dns-records": (at("fleet:dns_records:enabled", "no"), "fleet:dns_records:enabled",
                                 "must be true or false"),
    "quoted-false-publish": (at("database_server:publish", "false"), "database_server:publish",
                             "must be true or false"),
    "text-for-list": (at("policy:srs:exclude_domains", "example.net"), "policy:srs:exclude_domains",
                      "must be a list, got a text"),
    "list-for-mapping": (at("dovecot:quota_status_listen", ["127.0.0.1", 12340]), "dovecot:quota_status_listen",
                         "must be a mapping, got a list"),
    "null-for-mapping": (at("dovecot", None), "dovecot", "must be a mapping, got null"),
}


#: postfixadmin rows the postfixadmin states would refuse when they run: (override, key, problem)
BAD_ROWS = {
    "domain-flag-quoted": (at("postfixadmin:domains", {"example.com": {"backupmx": "yes"}}),
                           "postfixadmin:domains:example.com:backupmx", "backupmx must be true or false: 'yes'"),
    "domain-field-typo": (at("postfixadmin:domains", {"example.com": {"actve": True}}),
                          "postfixadmin:domains:example.com:actve", "unknown domain field(s) actve"),
    "domain-name": (at("postfixadmin:domains", {"exa_mple..com": {}}), "postfixadmin:domains:exa_mple..com",
                    "invalid domain name"),
    "alias-goto": (at("postfixadmin:aliases", {"abuse@example.com": {"goto": "not an address"}}),
                   "postfixadmin:aliases:abuse@example.com:goto", "invalid address: 'not an address'"),
    "alias-without-goto": (at("postfixadmin:aliases", {"noc@example.com": {"active": True}}),
                           "postfixadmin:aliases:noc@example.com", "goto (the addresses it forwards to) is required"),
    "mailbox-active-quoted": (at("postfixadmin:mailboxes", {"u@example.com": {"password": "x", "active": "yes"}}),
                              "postfixadmin:mailboxes:u@example.com:active", "active must be true or false"),
    "mailbox-name": (at("postfixadmin:mailboxes", {"not-an-address": {"password": "x"}}),
                     "postfixadmin:mailboxes:not-an-address", "invalid address"),
    "mailbox-as-text": (at("postfixadmin:mailboxes", {"u@example.com": "S3cret"}), "postfixadmin:mailboxes:u@example.com",
                        "must be a mapping of fields, got a text"),
    "encrypt": (at("postfixadmin:encrypt", "rot13"), "postfixadmin:encrypt", "unsupported encrypt 'rot13'"),
}


#: mistakes beside a secret (each holds "S3cret"): the error names the key, never the value
SECRETS_IN_MISTAKES = {
    "mistyped-password-key": (at("relayhost:pasword", "S3cret-typo"), "relayhost:pasword",
                              "is not a setting of this formula"),
    "conninfo-for-database": (at("database", "host=db1 password=S3cret-conninfo"), "database", "must be a mapping"),
    "conninfo-for-sync-from": (at("relay:sync_from", "host=mx1 password=S3cret-conninfo"), "relay:sync_from",
                               "must be a mapping"),
    "text-for-lookup-user": (at("postfixadmin:lookup_user", "postfix:S3cret-user"), "postfixadmin:lookup_user",
                             "must be null or a mapping"),
    "pem-for-a-key-path": (at("tls:key", "-----BEGIN PRIVATE KEY-----\nS3cretKey\n-----END PRIVATE KEY-----\n"),
                           "tls:key", "contains a control character"),
    "pem-for-dovecot-key-path": (at("dovecot:ssl:key", "-----BEGIN PRIVATE KEY-----S3cretKey"), "dovecot:ssl:key",
                                 "must be an absolute path"),
    "tab-in-a-secret-map": ({"maps": {"sasl": {"secret": True, "entries": {"[h]:587": "u:S3cret\tmap"}}}},
                            "maps:sasl:entries:[h]:587", "contains a control character"),
}
REFUSED = {**NOT_LIKE_DEFAULTS, **BAD_ROWS, **SECRETS_IN_MISTAKES}


@pytest.mark.parametrize("override,key,problem", REFUSED.values(), ids=REFUSED.keys())
def test_keys_kinds_and_rows_the_states_would_refuse_are_refused_first(override, key, problem):
    """A typo (`submission: {enable: true}`) would leave the default in place without a word;
    a row the postfixadmin states refuse would fail after other states changed things; a value
    beside a secret is never shown."""
    with pytest.raises(SaltInvocationError) as error:
        checks.settings(settings(override), defaults=DEFAULTS)
    message = str(error.value)
    assert message.startswith(f"pillar postfix:{key}: "), message
    assert problem in message and "S3cret" not in message, message


@pytest.mark.parametrize("override", [
    at("main", {"smtpd_timeout": "30s", "anything_postfix_knows": None}),
    at("master", {"smtps/inet": {"command": "smtpd"}}),
    at("submission:options", {"smtpd_tls_security_level": "encrypt"}),
    at("postfixadmin:domains", {"example.org": {"description": "x"}}),
    at("maps", {"sender_access": {"entries": {"a@example.com": "OK"}}}),
    at("database_server:settings", {"max_connections": 200}),
    at("database_server:superuser:sslmode", "require"),
    at("database", None),
    at("performance:dns_cache:packages", {"unbound": ["unbound"]}),
    at("performance:queue:mount_options", "noatime,nodev"),
    at("performance:queue:mount_options", None),
], ids=lambda override: next(iter(override)))
def test_free_form_mappings_and_connection_keys_pass(override):
    assert checks.settings(settings(override), defaults=DEFAULTS) is True


@pytest.mark.parametrize("key", ["main", "master", "maps", "aliases", "submission:options", "postfixadmin:domains",
                                 "database_server:settings", "lookup:map_type_pkgs"])
def test_a_free_form_mapping_left_empty_means_none(key):
    """Every entry commented out, YAML gives null: it is the default's {} to every sls."""
    built = settings(at(key, None))
    assert checks.settings(built, defaults=DEFAULTS) is True
    value = built
    for part in key.split(":"):
        value = value[part]
    assert value == {}


def test_rows_pillar_example_and_absent_ones_pass():
    absent = at("postfixadmin", {"domains": {"old.example": {"ensure": "absent"}},
                                 "aliases": {"@example.com": {"goto": ["postmaster@example.com"]},
                                             "gone@example.com": {"ensure": "absent"}}})
    assert checks.settings(settings(absent), defaults=DEFAULTS) is True
