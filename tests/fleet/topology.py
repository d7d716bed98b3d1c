"""The fleet the tests build: a database host, two primary MXs, a backup MX
that runs its own database, a DNS name server of the fleet and a client MTA
outside it.

db1 runs the primaries' postfixadmin database (cluster "primary") and
publishes it; mx1 and mx2 share that database and deliver with Dovecot;
mx-backup subscribes its own database (cluster "backup") to the
publication and serves the fleet's MX and A records from its DNS cache on
the namespace's resolver address, forwarding everything else to an
"upstream" server that knows nothing (NXDOMAIN, never a timeout).
"""

import secrets

from tests.harness.netns import FLEET_ADDRESSES, RESOLVER

DOMAIN = "fleet.test"
#: the name both primaries' MX records point at: a round-robin A record
MX_NAME = f"mx.{DOMAIN}"
#: minion id -> (role, host name, address)
HOSTS = {
    "mx1": ("primary", f"mx1.{DOMAIN}", FLEET_ADDRESSES[0]),
    "mx2": ("primary", f"mx2.{DOMAIN}", FLEET_ADDRESSES[1]),
    "mx-backup": ("backup", f"mx-backup.{DOMAIN}", FLEET_ADDRESSES[2]),
}
PRIMARIES = ("mx1", "mx2")
BACKUP = "mx-backup"
DATABASE_HOST = "db1"
CLIENT = ("client.outside.test", FLEET_ADDRESSES[3])
DNS_ADDRESS = RESOLVER
UPSTREAM_DNS = "127.0.0.54"
PRIMARY_PG_PORT = 5461
BACKUP_PG_PORT = 5462


class Roles:
    """The PostgreSQL roles of one database (random passwords)."""

    def __init__(self, prefix):
        self.admin = (f"{prefix}_admin", secrets.token_urlsafe(12))
        self.lookup = (f"{prefix}_lookup", secrets.token_urlsafe(12))
        self.replication = (f"{prefix}_sync", secrets.token_urlsafe(12))

    def passwords(self):
        return [password for _, password in (self.admin, self.lookup, self.replication)]


def connection(port, role, dbname="postfixadmin"):
    name, password = role
    return {"host": "127.0.0.1", "port": port, "dbname": dbname, "user": name, "password": password,
            "sslmode": "disable"}
