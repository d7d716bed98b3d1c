"""SMTP throughput: stock Postfix against Postfix configured by this formula with
pillar.example (hardening, proxied pgsql lookups, Dovecot quota-status policy
check), measured interleaved in one run.

smtp-source (Debian's postfix package) sends --messages messages of 1 KB over
--sessions parallel sessions to each instance; both relay what they accept to
one smtp-sink, so only acceptance is measured. Stock Postfix has nothing but
its own defaults (and the relay to the sink); the other is configured by the
formula with pillar.example, PostgreSQL over TCP (127.0.0.1). What one of its
lookups costs is lookup_bench.py's.

Every queue is on its own tmpfs: the bench compares what Postfix does, not
the filesystem (on ext4 the inode allocator's cost under this create/delete
churn differed by up to 2x between two identical instances). Before every
burst every queue is empty (what earlier bursts accepted has been relayed),
and the order of the bursts rotates by round, so no instance pays for
another's work. Printed: messages per second for each (medians), the median
of the rounds' ratios to stock, CPU time per message (the whole machine's,
over each burst), the SQL queries per message Postfix's lookups send
(PostgreSQL's statement log over one more burst of 200 messages), and the
most PostgreSQL connections open and proxymap processes running during one
more burst of --messages (sampled every 0.1 s, outside the timed bursts).

The configured instances use the HELO preset ``mynetworks`` instead of
pillar.example's ``strict`` (strict looks the client's HELO name up in DNS,
and the bench runs in a namespace without a resolver); everything else is
pillar.example's. Before the bursts the recipient's mailbox gets one message
through Dovecot's LMTP, as a mailbox in use has: Dovecot has copied its
usage into the database, so the quota check knows whether to ask
quota-status (a mailbox never delivered to is always asked).

With --database-cpu N, PostgreSQL runs on CPU N alone and everything else
(both Postfix instances, Dovecot, smtp-source, smtp-sink) on the other CPUs,
as when the database is a host of its own (the fleet's ``database`` role):
the configured side then pays on the mail host's CPUs for its lookups'
client side (smtpd, cleanup, proxymap) but not for PostgreSQL's parsing,
planning and executing, and the CPU time per message printed is the mail
side's.

--without-proxymap adds a third side, pillar.example with
``postfixadmin:proxy: false``: smtpd and cleanup query PostgreSQL
themselves, one connection per process and table, instead of through
proxymap.

Run as root: ``.venv/bin/python bench/smtp_bench.py [--rounds 15]
[--database-cpu 1] [--without-proxymap]``.
"""

import argparse
import collections
import contextlib
import os
import pathlib
import re
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psycopg

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.masterless import Masterless  # noqa: E402
from tests.harness.netns import Namespace  # noqa: E402
from tests.harness.pgcluster import PgCluster  # noqa: E402
from tests.harness.postfix_instance import PostfixInstance  # noqa: E402
from tests.harness.procs import wait_for_port  # noqa: E402
from tests.harness.sandbox_pillar import create_database, overlay, stop_dovecot  # noqa: E402

PILLAR_EXAMPLE = REPO / "pillar.example"
SINK = ("127.0.0.9", 2525)
RECIPIENT = "postmaster@example.com"


def smtp_source(address, sessions, messages):
    """Run smtp-source: MESSAGES messages to ADDRESS:25 over SESSIONS parallel sessions."""
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", "1024",
                    "-M", "client.example.org", "-f", "bench@example.org", "-t", RECIPIENT, f"{address}:25"],
                   check=True, capture_output=True, timeout=600)


def busy_ticks(cpus=None):
    """CPU time the whole machine (or its CPUS) has spent busy, in clock ticks (/proc/stat)."""
    wanted = {"cpu"} if cpus is None else {f"cpu{cpu}" for cpu in cpus}
    busy = 0
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *fields = line.split()
            if name in wanted:
                user, nice, system, _idle, _iowait, irq, softirq = map(int, fields[:7])
                busy += user + nice + system + irq + softirq
    return busy


def processes():
    """(pid, name, parent's pid) of every process (/proc/PID/stat)."""
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        yield int(stat.parent.name), text[text.index("(") + 1:text.rindex(")")], int(fields[1])


def database_on_its_own_cpu(pg, cpu):
    """Give PostgreSQL CPU to itself, as the fleet's database host would have, and this
    process (with whatever it starts from now on: Postfix, Dovecot, smtp-source, smtp-sink)
    the others. The postmaster's backends inherit its CPU. Returns the mail side's CPUs."""
    mail_cpus = os.sched_getaffinity(0) - {cpu}
    if cpu not in os.sched_getaffinity(0) or not mail_cpus:
        raise SystemExit(f"--database-cpu {cpu}: this process runs on CPUs {sorted(os.sched_getaffinity(0))}; "
                         "the database needs one of them and the mail side at least one other")
    postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    for pid, _name, parent in processes():
        if postmaster in (pid, parent):
            os.sched_setaffinity(pid, {cpu})
    os.sched_setaffinity(0, mail_cpus)
    return mail_cpus


class Side:
    """One Postfix instance the bursts go to, with its queue on a tmpfs of its own."""

    def __init__(self, name, instance):
        self.name, self.instance = name, instance
        self.rates, self.cpu = [], []

    @staticmethod
    def queue_on_tmpfs(instance):
        instance.queue_dir.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0755", "tmpfs", str(instance.queue_dir)],
                       check=True)
        return instance

    def drained(self, timeout=120):
        """Wait until the queue is empty: everything the instance accepted has been relayed."""
        deadline = time.monotonic() + timeout
        while any(files for directory in ("maildrop", "incoming", "active", "deferred")
                  for _, _, files in os.walk(self.instance.queue_dir / directory)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: the queue did not drain in {timeout} s")
            time.sleep(0.1)

    def burst(self, sessions, messages, cpus=None):
        """One timed burst: its messages per second and CPU milliseconds per message (of CPUS,
        by default the whole machine's)."""
        ticks, started = busy_ticks(cpus), time.monotonic()
        smtp_source(self.instance.address, sessions, messages)
        seconds, ticks = time.monotonic() - started, busy_ticks(cpus) - ticks
        self.rates.append(messages / seconds)
        self.cpu.append(ticks * 1000 / os.sysconf("SC_CLK_TCK") / messages)

    def stop(self):
        try:
            self.instance.stop()
        finally:
            stop_dovecot(self.instance)
            subprocess.run(["umount", str(self.instance.queue_dir)], check=False, capture_output=True)


class Configured(Side):
    """An instance the formula configured with pillar.example on its own database."""

    def __init__(self, name, slug, base, address, pg, socket=False, proxy=True):
        instance = self.queue_on_tmpfs(PostfixInstance(base / slug, address=address, hostname="mx1.example.com"))
        super().__init__(name, instance.create())
        self.pg, self.slug, self.base, self.socket, self.proxy = pg, slug, base, socket, proxy
        self.dbname = self.lookup_user = None

    def configure(self):
        """Apply the formula; over the socket the lookup role logs in with its password, as over TCP
        (the cluster trusts its socket otherwise, which would spare this side every SCRAM exchange)."""
        database, lookup_user = create_database(self.pg, self.slug)
        self.dbname, self.lookup_user = database["dbname"], lookup_user["name"]
        if self.socket:
            database = {**database, "host": str(self.pg.sockdir)}
            hba = self.pg.datadir / "pg_hba.conf"
            hba.write_text(f"local {self.dbname} {self.lookup_user} scram-sha-256\n" + hba.read_text())
            self.pg.psql("SELECT pg_reload_conf()")
        minion = Masterless(self.base / f"salt-{self.slug}", minion_id="mx1.example.com").write_config()
        minion.set_pillar(PILLAR_EXAMPLE, overlay(self.instance, database, lookup_user), {"postfix": {
            "hardening": {"helo_restrictions": "mynetworks"},
            "postfixadmin": {"proxy": self.proxy},
            "main": {"virtual_transport": f"smtp:[{SINK[0]}]:{SINK[1]}", "mynetworks": "127.0.0.0/8"},
        }})
        rc, output = minion.apply("postfix")
        if rc != 0:
            raise RuntimeError(f"{self.name}: state.apply postfix failed: {output}")
        self.deliver_once()

    def deliver_once(self):
        """One message for RECIPIENT through Dovecot's LMTP socket; wait until its usage is in quota_usage."""
        lmtp = smtplib.LMTP(str(self.instance.queue_dir / "private" / "dovecot-lmtp"))
        lmtp.sendmail("bench@example.org", [RECIPIENT], "Subject: usage\n\nusage\n")
        lmtp.quit()
        deadline = time.monotonic() + 10
        while not self.pg.psql(f"SELECT bytes FROM quota_usage WHERE username = '{RECIPIENT}'", dbname=self.dbname):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: Dovecot did not copy {RECIPIENT}'s usage into quota_usage")
            time.sleep(0.1)

    def table_queries(self):
        """{lookup table name: a pattern of the statements its query sends} for the pgsql tables
        the formula wrote into the instance's configuration directory."""
        patterns = {}
        for table in sorted((self.instance.config_dir / "pgsql").glob("*.cf")):
            query = re.search(r"^query = (.*)$", table.read_text(), re.MULTILINE).group(1)
            patterns[table.stem] = re.compile(re.sub(r"%[sud]", ".*?", re.escape(query)) + "$")
        return patterns

    def queries_per_message(self, messages=200):
        """{lookup table: statements per message} Postfix's lookups sent during a burst of MESSAGES,
        from PostgreSQL's statement log (log_statement = all for the burst only)."""
        self.drained()
        offset = self.pg.logfile.stat().st_size
        self.pg.psql("ALTER SYSTEM SET log_statement = 'all'")
        self.pg.psql("SELECT pg_reload_conf()")
        try:
            smtp_source(self.instance.address, 5, messages)
            time.sleep(0.5)
        finally:
            self.pg.psql("ALTER SYSTEM RESET log_statement")
            self.pg.psql("SELECT pg_reload_conf()")
        with open(self.pg.logfile, encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            statements = re.findall(r"statement: (SELECT .*)$", log.read(), re.MULTILINE)
        patterns = self.table_queries()
        tables = [name for statement in statements for name, pattern in patterns.items() if pattern.match(statement)]
        return {table: count / messages for table, count in collections.Counter(tables).most_common()}

    def connection_peak(self, sessions, messages):
        """A Peak over one untimed burst."""
        self.drained()
        peak = Peak(self.pg, self.dbname, self.lookup_user, self.instance)
        peak.start()
        smtp_source(self.instance.address, sessions, messages)
        peak.done.set()
        peak.join()
        return peak


class Peak(threading.Thread):
    """The most PostgreSQL connections to DBNAME (all, and those of LOOKUP_USER: Postfix's
    lookup tables) and proxymap processes of INSTANCE seen while running."""

    def __init__(self, pg, dbname, lookup_user, instance):
        super().__init__(daemon=True)
        self.pg, self.dbname, self.lookup_user = pg, dbname, lookup_user
        self.master = int((instance.queue_dir / "pid" / "master.pid").read_text())
        self.connections = self.lookup_connections = self.proxymaps = 0
        self.done = threading.Event()

    def _proxymaps(self):
        return sum(name == "proxymap" and parent == self.master for _pid, name, parent in processes())

    def run(self):
        query = ("SELECT count(*), count(*) FILTER (WHERE usename = %s) FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid()")
        with psycopg.connect(self.pg.superuser_dsn(), autocommit=True) as conn:
            while not self.done.is_set():
                every, lookup = conn.execute(query, (self.lookup_user, self.dbname)).fetchone()
                self.connections = max(self.connections, every)
                self.lookup_connections = max(self.lookup_connections, lookup)
                self.proxymaps = max(self.proxymaps, self._proxymaps())
                time.sleep(0.1)


def stock_side(base):
    instance = Side.queue_on_tmpfs(PostfixInstance(base / "stock", address="127.0.0.2")).create()
    instance.postconf("-e", f"relayhost = [{SINK[0]}]:{SINK[1]}", "mynetworks = 127.0.0.0/8")
    instance.backdate()
    return Side("stock Postfix", instance.start())


def report(args, sides, mail_cpus):
    median = statistics.median
    stock = sides[0]
    print(f"smtp-source, {args.sessions} sessions, {args.messages} messages of 1 KB, {args.rounds} rounds "
          "(medians; a ratio is the median of the rounds' ratios to stock):")
    if mail_cpus is not None:
        print(f"  PostgreSQL on CPU {args.database_cpu} alone, everything else on CPUs "
              f"{', '.join(map(str, sorted(mail_cpus)))}: CPU time per message is theirs")
    for side in sides:
        line = f"  {side.name:<24} {median(side.rates):6.0f} msg/s  {median(side.cpu):5.2f} CPU-ms/msg"
        if side is not stock:
            ratios = [rate / stock_rate for rate, stock_rate in zip(side.rates, stock.rates)]
            line += f"  ratio x{median(ratios):.2f} (rounds: {', '.join(f'{ratio:.2f}' for ratio in ratios)})"
        print(line)
    for side in sides[1:]:
        queries = side.queries_per_message()
        print(f"  {side.name}: SQL queries per message {sum(queries.values()):.2f} "
              f"({', '.join(f'{table} {count:.2f}' for table, count in queries.items())})")
        peak = side.connection_peak(args.sessions, args.messages)
        per_proxymap = (f"x{peak.lookup_connections / peak.proxymaps:.1f} the proxymap processes"
                        if peak.proxymaps else "no proxymap seen")
        print(f"    during a burst: at most {peak.connections} PostgreSQL connections, {peak.lookup_connections} "
              f"of them Postfix's lookup tables' (the others Dovecot's), {peak.proxymaps} proxymap processes: "
              f"Postfix's connections {per_proxymap}")


@contextlib.contextmanager
def sandbox(prefix):
    """(scratch directory, PostgreSQL cluster, list of sides) in a loopback-only network
    namespace; the sides put on the list are stopped and everything removed afterwards."""
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench makes a network namespace and starts daemons")
    namespace = Namespace().create().enter()
    base = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    base.chmod(0o755)
    pg = PgCluster(base / "pg").start()
    sides = []
    try:
        yield base, pg, sides
    finally:
        for side in sides:
            try:
                side.stop()
            except Exception as error:  # noqa: BLE001 - the other sides must be stopped too
                print(f"{side.name}: not stopped cleanly: {error}", file=sys.stderr)
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
        namespace.delete()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-cpu", type=int, metavar="CPU",
                        help="PostgreSQL on this CPU alone, everything else on the others (the database on a host "
                             "of its own, as the fleet's); CPU time per message is then the mail side's")
    parser.add_argument("--without-proxymap", action="store_true",
                        help="a third side: pillar.example with postfixadmin:proxy false (each smtpd and cleanup "
                             "process connects to PostgreSQL itself)")
    args = parser.parse_args()
    with sandbox("smtp-bench-") as (base, pg, sides):
        mail_cpus = None if args.database_cpu is None else database_on_its_own_cpu(pg, args.database_cpu)
        subprocess.run(["ip", "addr", "add", f"{SINK[0]}/8", "dev", "lo"], check=False, capture_output=True)
        sink = subprocess.Popen(["smtp-sink", "-u", "postfix", "-c", f"{SINK[0]}:{SINK[1]}", "1000"],
                                stdout=subprocess.DEVNULL)
        try:
            wait_for_port(*SINK)
            sides.append(stock_side(base))
            configured = [Configured("pillar.example", "tcp", base, "127.0.0.3", pg)]
            if args.without_proxymap:
                configured.append(Configured("without proxymap", "direct", base, "127.0.0.4", pg, proxy=False))
            for side in configured:
                sides.append(side)
                side.configure()
            for round_number in range(args.rounds):
                shift = round_number % len(sides)
                for side in sides[shift:] + sides[:shift]:
                    for other in sides:
                        other.drained()
                    side.burst(args.sessions, args.messages, mail_cpus)
            report(args, sides, mail_cpus)
        finally:
            sink.terminate()
            sink.wait()


if __name__ == "__main__":
    main()
