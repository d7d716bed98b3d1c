"""A fleet with a real salt-master: database host, two primaries, a backup MX
(tests/fleet/topology.py), nothing applied yet. Each test module gets its own."""

import shutil

import pytest
from salt.utils.dictupdate import merge

from tests.e2e.dns import DnsServer, Zone
from tests.harness import sandbox_pillar
from tests.harness.fleet import Fleet
from tests.harness.pgcluster import PgCluster
from tests.harness.postfix_instance import PostfixInstance
from tests.harness.procs import stop_pidfile

from .topology import (BACKUP, BACKUP_PG_PORT, CLIENT, DATABASE_HOST, DNS_ADDRESS, DOMAIN, HOSTS, MX_NAME,
                       PRIMARY_PG_PORT, UPSTREAM_DNS, Roles, connection)

ALICE = f"alice@{DOMAIN}"
#: what the fleet's highstate top file applies to each minion (all at once)
STATE_TOP = {DATABASE_HOST: ["postfix.database"], "mx1": ["postfix"], "mx2": ["postfix"],
             BACKUP: ["postfix.database", "postfix"]}


def _pg_ctl(cluster, action):
    return ["runuser", "-u", "postgres", "--", str(cluster.bindir / "pg_ctl"), "-D", str(cluster.datadir),
            "-l", str(cluster.logfile), "-w", action]


def _database_server(cluster, roles, publish):
    server = {
        "packages": [],
        "reload_command": _pg_ctl(cluster, "reload"),
        "restart_command": _pg_ctl(cluster, "restart"),
        "hba_file": str(cluster.datadir / "pg_hba.conf"),
        "ident_file": str(cluster.datadir / "pg_ident.conf"),
        "superuser": {"host": str(cluster.sockdir), "port": cluster.port},
        "publish": publish,
    }
    if publish:
        name, password = roles.replication
        server["replication_role"] = {"name": name, "password": password}
        server["hba"] = [{"user": name, "address": "127.0.0.0/8"}]
    return server


class FleetSite:
    """Everything of one fleet: clusters, Postfix instances, the master and minions."""

    def __init__(self, base, salt_factories, master_id):
        self.base = base
        self.primary_pg = PgCluster(base / "pg-primary", port=PRIMARY_PG_PORT)
        self.backup_pg = PgCluster(base / "pg-backup", port=BACKUP_PG_PORT)
        self.primary_roles, self.backup_roles = Roles("pfa"), Roles("pfb")
        self.instances = {minion: PostfixInstance(base / minion, address=address, hostname=hostname)
                          for minion, (_, hostname, address) in HOSTS.items()}
        self.client = PostfixInstance(base / "client", address=CLIENT[1], hostname=CLIENT[0])
        # "the internet": it knows the client's name (its HELO), nothing of the fleet
        self.upstream = DnsServer(base / "upstream-dns", Zone(hosts={CLIENT[0]: CLIENT[1]}, mx={}),
                                  address=UPSTREAM_DNS)
        self.alice_password = "alice-" + self.primary_roles.admin[1]
        self.salt = Fleet(base / "salt", salt_factories, master_id, state_top=STATE_TOP)
        self.overlays = {}

    @property
    def primary_admin(self):
        return connection(PRIMARY_PG_PORT, self.primary_roles.admin)

    def secrets(self):
        return self.primary_roles.passwords() + self.backup_roles.passwords() + [self.alice_password]

    def _mail_host(self, minion, database, lookup):
        role, hostname, address = HOSTS[minion]
        instance = self.instances[minion]
        overlay = sandbox_pillar.overlay(instance, database, {"name": lookup[0], "password": lookup[1]})
        self.overlays[minion] = overlay
        fleet = {"role": role, "address": address, "hostname": hostname}
        return merge(overlay, {"postfix": {"fleet": fleet}})

    def pillar(self, minion):
        if minion == DATABASE_HOST:
            name, password = self.primary_roles.lookup
            return {"postfix": {
                "database": self.primary_admin,
                "postfixadmin": {"lookup_user": {"name": name, "password": password}},
                "database_server": _database_server(self.primary_pg, self.primary_roles, publish=True),
                "fleet": {"role": "database"},
            }}
        if minion == BACKUP:
            pillar = self._mail_host(minion, connection(BACKUP_PG_PORT, self.backup_roles.admin),
                                     self.backup_roles.lookup)
            return merge(pillar, {"postfix": {
                "database_server": _database_server(self.backup_pg, self.backup_roles, publish=False),
                "relay": {"enabled": True, "replication": "logical",
                          "sync_from": connection(PRIMARY_PG_PORT, self.primary_roles.replication)},
                "performance": {"dns_cache": {"enabled": True, "backend": "dnsmasq", "listen": DNS_ADDRESS,
                                              "forwarders": [UPSTREAM_DNS]}},
                "fleet": {"states": ["postfix.database", "postfix"], "dns_records": {"enabled": True}},
            }})
        pillar = self._mail_host(minion, self.primary_admin, self.primary_roles.lookup)
        return merge(pillar, {
            "postfix": {
                "postfixadmin": {"enabled": True, "domains": {DOMAIN: {"description": "fleet test domain"}},
                                 "mailboxes": {ALICE: {"password": self.alice_password}}},
                "dovecot": {"enabled": True},
                "fleet": {"mx_name": MX_NAME},
            },
            # what `salt mx1 postfixadmin.*` works on, as an administrator sets it
            "postfixadmin": {"database": self.primary_admin},
        })

    def start(self):
        self.primary_pg.start()
        self.backup_pg.start()
        self.upstream.start()
        for instance in self.instances.values():
            instance.create()
            # the host's resolv.conf the DNS cache replaces (and keeps a copy of)
            (instance.base / "resolv.conf").write_text(f"nameserver {UPSTREAM_DNS}\n")
        self.client.create()
        # every message its own connection, so the MX choice is made per message
        self.client.postconf("-e", "smtp_connection_cache_on_demand = no")
        self.client.backdate()
        self.client.start()
        self.salt.start()
        for minion in (DATABASE_HOST, *HOSTS):
            self.salt.add_minion(minion, self.pillar(minion))
        return self

    def stop(self):
        self.salt.stop()
        for minion, instance in [*self.instances.items(), ("client", self.client)]:
            instance.stop()
            sandbox_pillar.stop_dovecot(instance)
        backup_cache = self.overlays.get(BACKUP, {}).get("postfix", {}).get("performance", {}).get("dns_cache")
        if backup_cache:
            stop_pidfile(backup_cache["pidfile"])
        self.upstream.stop()
        self.primary_pg.stop()
        self.backup_pg.stop()


@pytest.fixture(scope="module")
def fleet(sandbox_base, salt_factories, request):
    """A bare fleet of this test module (no state applied), stopped and removed afterwards."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    site = FleetSite(sandbox_base / f"fleet-{name}", salt_factories, f"master-{name}")
    try:
        yield site.start()
    finally:
        site.stop()
        shutil.rmtree(site.base, ignore_errors=True)

