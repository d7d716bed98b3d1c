"""Nothing half-applied (D6): a bad value bound for Dovecot's files, the DNS
cache's, the lookup tables or the database connection fails the whole
`state.apply postfix` naming its key, and on a sandbox running pillar.example
nothing changes: main.cf, master.cf, dovecot.conf, dovecot-sql.conf.ext and
the tables keep their bytes, Postfix and Dovecot keep running."""

import shutil

import pytest

from tests.conftest import _address_pool
from tests.formula.conftest import PILLAR_EXAMPLE, FormulaSandbox
from tests.harness.masterless import Masterless
from tests.harness.postfix_instance import PostfixInstance
from tests.harness.procs import alive
from tests.harness.sandbox_pillar import create_database, dovecot_dir, stop_dovecot

SECRET = "s3cret-never-shown"

#: class of bad input -> (pillar under postfix:, text the failure must hold)
BAD_VALUES = {
    "newline-injected-into-dovecot-conf": (
        {"dovecot": {"log_path": "/var/log/dovecot.log\nauth_verbose_passwords = plain"}},
        "pillar postfix:dovecot:log_path: contains a control character"),
    "newline-injected-into-main-cf": ({"main": {"delay_warning_time": "4h\nrelayhost = [evil.example]"}},
                                      "pillar postfix:main:delay_warning_time: contains a control character"),
    "database-port-not-a-number": ({"database": {"port": "abc"}}, "pillar postfix:database:port: must be a port"),
    "database-port-out-of-range": ({"database": {"port": 99999}}, "pillar postfix:database:port: must be a port"),
    "quota-status-port-out-of-range": ({"dovecot": {"quota_status_listen": {"port": 70000}}},
                                       "pillar postfix:dovecot:quota_status_listen:port: must be a port"),
    "relative-path": ({"dovecot": {"mail_root": "vmail"}}, "pillar postfix:dovecot:mail_root: must be an absolute"),
    "absolute-auth-socket": ({"dovecot": {"auth_socket": "/var/spool/postfix/private/auth"}},
                             "pillar postfix:dovecot:auth_socket: must be relative to Postfix's queue_directory"),
    "sslmode": ({"database": {"sslmode": "on"}}, "pillar postfix:database:sslmode: must be one of disable"),
    "password-scheme": ({"dovecot": {"password_scheme": "SHA512"[::-1]}},
                        "pillar postfix:dovecot:password_scheme: must be one of"),
    "dns-cache-backend": ({"performance": {"dns_cache": {"backend": "bind9"}}},
                          "pillar postfix:performance:dns_cache:backend: must be one of unbound, dnsmasq"),
    "database-host": ({"database": {"host": "db.example.com port=1"}},
                      "pillar postfix:database:host: must be a host name or an IP address"),
    "dns-forwarder": ({"performance": {"dns_cache": {"forwarders": ["192.0.2.1\nserver=6.6.6.6"]}}},
                      "pillar postfix:performance:dns_cache:forwarders:0: contains a control character"),
    "control-character-in-database-password": ({"database": {"password": SECRET + "\nx"}},
                                               "pillar postfix:database:password: contains a control character"),
    # with a change main.cf would take if any state ran
    "typo-in-a-key": ({"main": {"delay_warning_time": "5h"}, "submission": {"enable": True}},
                      "pillar postfix:submission:enable: is not a setting of this formula"),
    "quoted-false": ({"main": {"delay_warning_time": "5h"}, "performance": {"dns_cache": {"enabled": "false"}}},
                     "pillar postfix:performance:dns_cache:enabled: must be true or false"),
    "whitespace-in-a-submission-option": (
        {"main": {"delay_warning_time": "5h"},
         "submission": {"options": {"smtpd_sender_restrictions": "reject_unknown_sender_domain reject"}}},
        "pillar postfix:submission: service submission/inet -o smtpd_sender_restrictions: value contains whitespace"),
    "master-field-typo": ({"main": {"delay_warning_time": "5h"},
                           "master": {"smtps/inet": {"command": "smtpd", "privat": "n"}}},
                          "pillar postfix:master:smtps/inet: service smtps/inet: unknown field(s) privat"),
    "postfixadmin-row": ({"main": {"delay_warning_time": "5h"},
                          "postfixadmin": {"domains": {"example.com": {"backupmx": "yes"}}}},
                         "pillar postfix:postfixadmin:domains:example.com:backupmx: backupmx must be true or false"),
    "relayhost-username-with-colon": (
        {"relayhost": {"host": "[smtp.example.net]:587", "username": "user:name", "password": SECRET}},
        "pillar postfix:relayhost:username: must not contain a colon"),
    "lookup-password-with-surrounding-space": (
        {"postfixadmin": {"lookup_user": {"password": SECRET + " "}}},
        "pillar postfix:postfixadmin:lookup_user:password: starts or ends with whitespace"),
}


@pytest.fixture(scope="module")
def applied(pg, sandbox_base):
    """pillar.example applied to a running sandbox (Postfix, Dovecot, tables), shared by the cases."""
    instance = PostfixInstance(sandbox_base / "bad-values", address=next(_address_pool)).create()
    database, lookup_user = create_database(pg, "pfabad")
    sandbox = FormulaSandbox(instance, Masterless(sandbox_base / "bad-values-salt").write_config(),
                             database, lookup_user)
    instance.start()
    sandbox.apply_ok(PILLAR_EXAMPLE)
    yield sandbox
    stop_dovecot(instance)
    instance.stop()
    pg.drop_database(database["dbname"])
    shutil.rmtree(instance.base, ignore_errors=True)


def written_files(sandbox):
    config_dir = sandbox.instance.config_dir
    dovecot_etc = dovecot_dir(sandbox.instance) / "etc"
    paths = [config_dir / "main.cf", config_dir / "master.cf", dovecot_etc / "dovecot.conf",
             dovecot_etc / "dovecot-sql.conf.ext", *sorted((config_dir / "pgsql").glob("*.cf"))]
    return {path: path.read_bytes() for path in paths}


def dovecot_pid(sandbox):
    return int((dovecot_dir(sandbox.instance) / "run" / "master.pid").read_text().split()[0])


@pytest.mark.parametrize("case", BAD_VALUES, ids=BAD_VALUES.keys())
def test_a_bad_value_fails_the_run_and_changes_nothing(applied, case):
    sandbox = applied
    bad, message = BAD_VALUES[case]
    before = written_files(sandbox)
    assert len(before) > 4, "pillar.example wrote Dovecot's files and the tables"
    dovecot = dovecot_pid(sandbox)

    sandbox.masterless.set_pillar(PILLAR_EXAMPLE, sandbox.overlay, {"postfix": bad})  # the bad layer wins
    rc, result = sandbox.masterless.apply("postfix")

    assert rc != 0
    output = "\n".join(result) if isinstance(result, list) else str(result)
    assert message in output, output
    assert SECRET not in output and SECRET not in (sandbox.masterless.base / "minion.log").read_text()
    assert written_files(sandbox) == before
    assert sandbox.instance.status()
    assert alive(dovecot) and dovecot_pid(sandbox) == dovecot
