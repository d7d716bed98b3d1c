"""The sandbox pillar layer: points the formula at a sandboxed Postfix
instance, a database in the sandbox PostgreSQL cluster and Dovecot
directories under the instance's base, so pillar.example (or any pillar)
can be applied without touching the host's /etc/postfix, /etc/dovecot or
/var/vmail. Layer it LAST (it wins)."""

import pathlib
import secrets

from .procs import stop_pidfile

REPO = pathlib.Path(__file__).resolve().parents[2]
#: the host and port of PgCluster inside the namespace
PG_HOST = "127.0.0.1"
PG_PORT = 5432


def create_database(pg, dbname, owner=None, lookup_user=None):
    """Make a database owned by a new login role (and a read-only lookup role);
    return the ``postfix:database`` and ``postfix:postfixadmin:lookup_user`` pillar values."""
    owner = owner or f"{dbname}_admin"
    lookup_user = lookup_user or f"{dbname}_lookup"
    database = {"host": PG_HOST, "port": PG_PORT, "dbname": dbname, "user": owner,
                "password": secrets.token_urlsafe(12), "sslmode": "disable"}
    lookup = {"name": lookup_user, "password": secrets.token_urlsafe(12)}
    pg.create_role(owner, database["password"])
    pg.create_role(lookup_user, lookup["password"])
    pg.create_database(dbname, owner=owner)
    return database, lookup


def dovecot_dir(instance):
    """Where the sandbox layer puts Dovecot's configuration and runtime files."""
    return instance.base / "dovecot"


def stop_dovecot(instance):
    """Stop the Dovecot the formula may have started for INSTANCE (its master.pid)."""
    stop_pidfile(dovecot_dir(instance) / "run" / "master.pid")


def overlay(instance, database, lookup_user):
    """The pillar layer for one sandboxed PostfixInstance and database."""
    base = instance.base
    return {
        "postfix": {
            "config_dir": str(instance.config_dir),
            "lookup": {"queue_directory": str(instance.queue_dir)},
            "database": database,
            "postfixadmin": {"lookup_user": lookup_user},
            "performance": {
                "dns_cache": {
                    "resolv_conf": str(base / "resolv.conf"),
                    "config_file": str(base / "dns-cache" / "dns-cache.conf"),
                    "pidfile": str(base / "dns-cache" / "dns-cache.pid"),
                },
            },
            "dovecot": {
                "config_dir": str(dovecot_dir(instance) / "etc"),
                "base_dir": str(dovecot_dir(instance) / "run"),
                "state_dir": str(dovecot_dir(instance) / "lib"),
                "log_path": str(base / "log" / "dovecot.log"),
                "mail_root": str(base / "vmail"),
                "imap_listen": {"address": instance.address},
                "quota_status_listen": {"address": instance.address},
            },
        }
    }
