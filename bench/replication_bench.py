"""How soon a backup MX accepts a mailbox added on the primary.

A primary and a backup PostgreSQL cluster (tests/postfixadmin/replication.py),
each with a postfixadmin database, and the backup's Postfix (a sandboxed
instance) with the formula's relay tables (relay_domains,
relay_recipient_maps from postfix/queries.yaml, proxied pgsql) on the
backup's database. The primary's Postfix is not running: the backup is all a
sender reaches. For each of N additions (default 100) a mailbox is added on
the primary with the postfixadmin module, then a client outside mynetworks
asks the backup RCPT TO for it (a new SMTP session every 20 ms) until it
answers 250; the time from the addition to that 250 is recorded.

1. logical: the backup subscribes to the primary's publication
   (postfixadmin.publication_present / subscription_present); nothing else
   runs between the addition and the RCPT.
2. snapshot (the baseline): after each addition, one sync_backup and one
   Postfix reload, what relay:replication snapshot does at a state.apply
   (in real life an apply comes minutes or hours later, so this is its best
   case).

Prints median, 95th percentile and max for both, and the ratio. Exits 1 if
the logical max exceeds 5 s. Run as root from the repository root:
``.venv/bin/python bench/replication_bench.py [--count N]``. It makes its own
loopback-only network namespace, clusters and Postfix under /var/tmp, and
removes them at the end.
"""

import argparse
import os
import pathlib
import shutil
import smtplib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.netns import Namespace  # noqa: E402  (needs the repository on sys.path)
from tests.harness.postfix_instance import PostfixInstance  # noqa: E402
from tests.postfixadmin.helpers import QUERIES, load_module  # noqa: E402
from tests.postfixadmin.replication import PUBLICATION, start_pair, wait_for  # noqa: E402

BACKUP_ADDRESS, CLIENT_ADDRESS = "127.0.0.3", "127.0.0.9"
DOMAIN = "example.test"
SUBSCRIPTION = "mx2_relay"
LIMIT = 5.0


def backup_postfix(base, backup):
    """The backup's Postfix with the relay tables on the backup's database."""
    instance = PostfixInstance(base / "postfix-mx2", address=BACKUP_ADDRESS, hostname="mx2.example.test").create()
    tables = base / "tables"
    tables.mkdir()
    settings = backup.lookup
    for table in ("relay_domains", "relay_recipient_maps"):
        path = tables / f"{table}.cf"
        path.write_text(
            f"hosts = inet:{settings['host']}:{settings['port']}\nuser = {settings['user']}\n"
            f"password = {settings['password']}\ndbname = {settings['dbname']}\n"
            f"query = {' '.join(QUERIES[table]['query'].split())}\n"
        )
        path.chmod(0o640)
        shutil.chown(path, "root", "postfix")
    instance.postconf(
        "-e",
        f"relay_domains = proxy:pgsql:{tables}/relay_domains.cf",
        f"relay_recipient_maps = proxy:pgsql:{tables}/relay_recipient_maps.cf",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtpd_helo_required = yes",
    )
    instance.backdate()
    return instance.start()


def rcpt_code(address):
    with smtplib.SMTP(BACKUP_ADDRESS, 25, timeout=10, source_address=(CLIENT_ADDRESS, 0)) as smtp:
        smtp.ehlo("client.example.org")
        smtp.mail("sender@example.org")
        return smtp.rcpt(address)[0]


def accepted_after(pfa, primary, address, after_add=None):
    """Add ADDRESS on the primary; seconds until the backup's Postfix answers 250 to RCPT TO for it."""
    start = time.monotonic()
    pfa.mailbox_add(address, "bench-pw", database=primary.admin)
    if after_add:
        after_add()
    wait_for(lambda: rcpt_code(address) == 250, timeout=60, step=0.02)
    return time.monotonic() - start


def report(name, samples):
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(f"{name:9} n={len(ordered):3}  median {statistics.median(ordered):6.3f} s  p95 {p95:6.3f} s  "
          f"max {ordered[-1]:6.3f} s  min {ordered[0]:6.3f} s")
    return statistics.median(ordered)


def run(base, count):
    pfa = load_module()
    primary, backup = start_pair(base)
    instance = None
    try:
        pfa.domain_add(DOMAIN, database=primary.admin)
        pfa.publication_present(PUBLICATION, database=primary.admin)
        pfa.subscription_present(SUBSCRIPTION, primary.replicator, PUBLICATION, database=backup.superuser)
        wait_for(lambda: set((pfa.subscription_status(SUBSCRIPTION, database=backup.superuser) or {})
                             .get("tables", {}).values()) == {"ready"}, timeout=60)
        instance = backup_postfix(base, backup)
        if rcpt_code(f"nobody@{DOMAIN}") != 550:
            raise SystemExit("the backup accepts unknown recipients: the relay tables are not in force")

        logical = [accepted_after(pfa, primary, f"logical{n}@{DOMAIN}") for n in range(count)]

        pfa.subscription_absent(SUBSCRIPTION, database=backup.superuser)

        def sync_and_reload():
            pfa.sync_backup(primary.admin, backup.admin)
            instance.postfix("reload")

        snapshot = [accepted_after(pfa, primary, f"snapshot{n}@{DOMAIN}", sync_and_reload) for n in range(count)]
    finally:
        if instance is not None:
            instance.stop()
        backup.stop()
        primary.stop()

    print(f"mailbox added on the primary -> RCPT TO accepted by the backup (primary's Postfix down), {count} each:")
    logical_median = report("logical", logical)
    snapshot_median = report("snapshot", snapshot)
    print(f"snapshot/logical median ratio: {snapshot_median / logical_median:.1f}")
    verdict = max(logical) <= LIMIT
    print(f"logical max {max(logical):.3f} s {'<=' if verdict else '>'} {LIMIT} s: {'PASS' if verdict else 'FAIL'}")
    return 0 if verdict else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench makes a network namespace and starts PostgreSQL and Postfix")
    namespace = Namespace().create().enter()
    base = pathlib.Path(f"/var/tmp/pfxb-{os.getpid()}")
    base.mkdir(mode=0o755)
    try:
        return run(base, args.count)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        namespace.delete()


if __name__ == "__main__":
    sys.exit(main())
