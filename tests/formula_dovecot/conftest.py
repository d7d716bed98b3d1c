"""Fixtures for postfix.dovecot, postfix.quota and postfix.performance: a
postfixadmin database with mailboxes, a sandboxed Postfix instance and a
masterless minion whose pillar points the formula at them."""

import itertools
import pathlib
import shutil

import pytest

from tests.harness.masterless import Masterless
from tests.harness.postfix_instance import PostfixInstance
from tests.harness.procs import run

DB_USER = "pfa_h4b"
# Quote, backslash and space: the password must survive Dovecot's connect string.
DB_PASSWORD = "s3cret' pw\\x"
QUOTA_MESSAGE = "Mailbox full, try later"

MAILBOXES = {
    "small@example.test": {"password": "small-pass", "quota": 2000},
    "roomy@example.test": {"password": "roomy-pass", "quota": 10_000_000},
    "free@example.test": {"password": "free-pass", "quota": 0},
}

_counter = itertools.count(1)


@pytest.fixture(scope="module")
def postfixadmin_db(pg, minion_opts):
    """A fresh postfixadmin database with example.test and the MAILBOXES,
    made by the postfixadmin module; returns its connection settings."""
    from saltfactories.utils.functional import Loaders

    name = f"pfa_h4b_{next(_counter)}"
    if not pg.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{DB_USER}'"):
        pg.psql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD $pw${DB_PASSWORD}$pw$")
    pg.create_database(name, owner=DB_USER)
    database = {"host": "127.0.0.1", "port": 5432, "dbname": name, "user": DB_USER, "password": DB_PASSWORD,
                "sslmode": "disable"}
    loaders = Loaders(minion_opts)
    postfixadmin = loaders.modules.postfixadmin
    postfixadmin.schema_init(database=database)
    postfixadmin.domain_add("example.test", database=database)
    for address, mailbox in MAILBOXES.items():
        postfixadmin.mailbox_add(address, mailbox["password"], quota=mailbox["quota"], database=database)
    loaders.reset_state()
    yield database
    pg.drop_database(name)


class DovecotSite:
    """A sandbox for postfix.dovecot: a Postfix instance, Dovecot's directories, a minion."""

    def __init__(self, base, database, address):
        self.base = pathlib.Path(base)
        self.database = database
        self.postfix = PostfixInstance(self.base / "postfix", address=address)
        self.dovecot_dir = self.base / "dovecot"
        self.run_dir = self.base / "dovecot-run"
        self.mail_root = self.base / "vmail"
        self.minion = Masterless(self.base / "salt")

    @property
    def dovecot_conf(self):
        return self.dovecot_dir / "dovecot.conf"

    def pillar(self, **overrides):
        dovecot = {
            "enabled": True,
            "config_dir": str(self.dovecot_dir),
            "base_dir": str(self.run_dir),
            "state_dir": str(self.base / "dovecot-state"),
            "log_path": str(self.base / "dovecot.log"),
            "mail_root": str(self.mail_root),
            "imap_listen": {"address": self.postfix.address, "port": 143},
            "quota_status_listen": {"address": self.postfix.address, "port": 12340},
            "ssl": {"cert": str(self.base / "tls" / "cert.pem"), "key": str(self.base / "tls" / "key.pem")},
        }
        settings = {
            "config_dir": str(self.postfix.config_dir),
            "lookup": {"queue_directory": str(self.postfix.queue_dir)},
            "database": self.database,
            "quota": {"message": QUOTA_MESSAGE},
            "dovecot": dovecot,
        }
        return {"postfix": _merged(settings, overrides)}

    def create(self):
        self.postfix.create()
        tls = self.base / "tls"
        tls.mkdir()
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx1.example.test",
             "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")])
        self.minion.write_config()
        return self

    def apply(self, sls, test=False, **overrides):
        self.minion.set_pillar(self.pillar(**overrides))
        return self.minion.apply(sls, test=test)

    def doveadm(self, *args, check=True):
        return run(["doveadm", "-c", str(self.dovecot_conf), *args], check=check)

    def destroy(self):
        pid = self.run_dir / "master.pid"
        if pid.exists():
            run(["dovecot", "-c", str(self.dovecot_conf), "stop"], check=False)
        self.postfix.stop()


def _merged(base, overrides):
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.fixture(scope="module")
def make_dovecot_site(sandbox_base, request):
    made = []

    def make(database, address):
        site = DovecotSite(sandbox_base / f"h4b-{request.module.__name__.rsplit('.', 1)[-1]}-{next(_counter)}",
                           database, address)
        made.append(site)
        return site.create()

    yield make
    for site in made:
        site.destroy()
        shutil.rmtree(site.base, ignore_errors=True)
