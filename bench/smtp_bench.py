"""SMTP throughput: stock Postfix against Postfix configured by this formula with
pillar.example (hardening, proxied pgsql lookups, Dovecot quota-status policy
check), measured interleaved in one run.

smtp-source (Debian's postfix package) sends --messages messages over
--sessions parallel sessions to each instance; both relay what they accept to
one smtp-sink, so only acceptance is measured. Before every burst both queues
are empty (what the last burst accepted has been relayed), and the order of
the two bursts alternates by round, so neither instance pays for the other's
work. Printed: messages per second for each (medians), the median of the
rounds' ratios configured/stock, CPU time per message (the whole machine's,
over each burst), the SQL queries per message Postfix's lookups send
(PostgreSQL's statement log over one more burst of 200 messages), and the
most PostgreSQL connections open and proxymap processes running during one
more burst of --messages (sampled every 0.1 s, outside the timed bursts).

The configured instance uses the HELO preset ``mynetworks`` instead of
pillar.example's ``strict`` (strict looks the client's HELO name up in DNS,
and the bench runs in a namespace without a resolver); everything else is
pillar.example's. Before the bursts the recipient's mailbox gets one message
through Dovecot's LMTP, as a mailbox in use has: Dovecot has copied its
usage into the database, so the quota check knows whether to ask
quota-status (a mailbox never delivered to is always asked).

Run as root: ``.venv/bin/python bench/smtp_bench.py [--rounds 7]``.
"""

import argparse
import collections
import os
import re
import pathlib
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


def busy_ticks():
    """CPU time the whole machine has spent busy, in clock ticks (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, stat.readline().split()[1:8])
    return user + nice + system + irq + softirq


def drained(instance, timeout=120):
    """Wait until INSTANCE's queue is empty: everything it accepted has been relayed."""
    deadline = time.monotonic() + timeout
    while any(files for directory in ("maildrop", "incoming", "active", "deferred")
              for _, _, files in os.walk(instance.queue_dir / directory)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{instance.base}: the queue did not drain in {timeout} s")
        time.sleep(0.1)


def burst(instance, sessions, messages):
    """(messages per second, CPU milliseconds per message) of one burst into INSTANCE."""
    drained(instance)
    ticks, started = busy_ticks(), time.monotonic()
    smtp_source(instance.address, sessions, messages)
    seconds, ticks = time.monotonic() - started, busy_ticks() - ticks
    return messages / seconds, ticks * 1000 / os.sysconf("SC_CLK_TCK") / messages


def table_queries(instance):
    """{lookup table name: a pattern of the statements its query sends} for the pgsql tables
    the formula wrote into INSTANCE's configuration directory."""
    patterns = {}
    for table in sorted((instance.config_dir / "pgsql").glob("*.cf")):
        query = re.search(r"^query = (.*)$", table.read_text(), re.MULTILINE).group(1)
        patterns[table.stem] = re.compile(re.sub(r"%[sud]", ".*?", re.escape(query)) + "$")
    return patterns


def queries_per_message(pg, instance, messages=200):
    """{lookup table: statements per message} Postfix's lookups sent during a burst of MESSAGES,
    from PostgreSQL's statement log (log_statement = all for the burst only)."""
    drained(instance)
    offset = pg.logfile.stat().st_size
    pg.psql("ALTER SYSTEM SET log_statement = 'all'")
    pg.psql("SELECT pg_reload_conf()")
    try:
        smtp_source(instance.address, 5, messages)
        time.sleep(0.5)
    finally:
        pg.psql("ALTER SYSTEM RESET log_statement")
        pg.psql("SELECT pg_reload_conf()")
    with open(pg.logfile, encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        statements = re.findall(r"statement: (SELECT .*)$", log.read(), re.MULTILINE)
    patterns = table_queries(instance)
    tables = [name for statement in statements for name, pattern in patterns.items() if pattern.match(statement)]
    return {table: count / messages for table, count in collections.Counter(tables).most_common()}


class Peak(threading.Thread):
    """The most PostgreSQL connections (all, and those of LOOKUP_USER: Postfix's
    lookup tables) and proxymap processes seen while running. Sampled cheaply (one
    open connection, /proc read in process), so the sampling does not slow the
    instance it watches."""

    def __init__(self, pg, dbname, lookup_user, instance):
        super().__init__(daemon=True)
        self.pg, self.dbname, self.lookup_user = pg, dbname, lookup_user
        self.master = (instance.queue_dir / "pid" / "master.pid").read_text().strip()
        self.connections = self.lookup_connections = self.proxymaps = 0
        self.done = threading.Event()

    def _proxymaps(self):
        count = 0
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
            count += name == "proxymap" and fields[1] == self.master
        return count

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


def stock_instance(base):
    instance = PostfixInstance(base / "stock", address="127.0.0.2").create()
    instance.postconf("-e", f"relayhost = [{SINK[0]}]:{SINK[1]}", "mynetworks = 127.0.0.0/8")
    instance.backdate()
    return instance.start()


def configured_instance(base, pg):
    instance = PostfixInstance(base / "configured", address="127.0.0.3", hostname="mx1.example.com").create()
    database, lookup_user = create_database(pg, "postfixadmin")
    minion = Masterless(base / "salt", minion_id="mx1.example.com").write_config()
    minion.set_pillar(PILLAR_EXAMPLE, overlay(instance, database, lookup_user), {"postfix": {
        "hardening": {"helo_restrictions": "mynetworks"},
        "main": {"virtual_transport": f"smtp:[{SINK[0]}]:{SINK[1]}", "mynetworks": "127.0.0.0/8"},
    }})
    rc, output = minion.apply("postfix")
    if rc != 0:
        raise RuntimeError(f"state.apply postfix failed: {output}")
    return instance, database["dbname"], lookup_user["name"]


def deliver_once(instance, pg, dbname):
    """One message for RECIPIENT through Dovecot's LMTP socket; wait until its usage is in quota_usage."""
    lmtp = smtplib.LMTP(str(instance.queue_dir / "private" / "dovecot-lmtp"))
    lmtp.sendmail("bench@example.org", [RECIPIENT], "Subject: usage\n\nusage\n")
    lmtp.quit()
    deadline = time.monotonic() + 10
    while not pg.psql(f"SELECT bytes FROM quota_usage WHERE username = '{RECIPIENT}'", dbname=dbname):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Dovecot did not copy {RECIPIENT}'s usage into quota_usage")
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench makes a network namespace and starts daemons")
    namespace = Namespace().create().enter()
    base = pathlib.Path(tempfile.mkdtemp(prefix="smtp-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    pg = PgCluster(base / "pg").start()
    subprocess.run(["ip", "addr", "add", f"{SINK[0]}/8", "dev", "lo"], check=False, capture_output=True)
    sink = subprocess.Popen(["smtp-sink", "-u", "postfix", "-c", f"{SINK[0]}:{SINK[1]}", "1000"], stdout=subprocess.DEVNULL)
    instances = []
    try:
        wait_for_port(*SINK)
        stock = stock_instance(base)
        instances.append(stock)
        configured, dbname, lookup_user = configured_instance(base, pg)
        instances.append(configured)
        deliver_once(configured, pg, dbname)
        sides = {"stock": stock, "configured": configured}
        rates, cpu = collections.defaultdict(list), collections.defaultdict(list)
        for round_number in range(args.rounds):
            order = ("stock", "configured") if round_number % 2 == 0 else ("configured", "stock")
            for name in order:
                rate, milliseconds = burst(sides[name], args.sessions, args.messages)
                rates[name].append(rate)
                cpu[name].append(milliseconds)
        ratios = [configured_rate / stock_rate for stock_rate, configured_rate in zip(rates["stock"], rates["configured"])]
        queries = queries_per_message(pg, configured)
        drained(configured)
        peak = Peak(pg, dbname, lookup_user, configured)
        peak.start()
        smtp_source(configured.address, args.sessions, args.messages)
        peak.done.set()
        peak.join()

        median = statistics.median
        print(f"smtp-source, {args.sessions} sessions, {args.messages} messages of 1 KB, {args.rounds} rounds "
              f"(medians; the ratio is the median of the rounds' ratios):")
        print(f"  stock Postfix   {median(rates['stock']):6.0f} msg/s   {median(cpu['stock']):5.2f} CPU-ms/msg")
        print(f"  pillar.example  {median(rates['configured']):6.0f} msg/s   {median(cpu['configured']):5.2f} CPU-ms/msg"
              f"   ratio x{median(ratios):.2f} (rounds: {', '.join(f'{ratio:.2f}' for ratio in ratios)})")
        print(f"  SQL queries per message: {sum(queries.values()):.2f} "
              f"({', '.join(f'{table} {count:.2f}' for table, count in queries.items())})")
        per_proxymap = (f"x{peak.lookup_connections / peak.proxymaps:.1f} the proxymap processes"
                        if peak.proxymaps else "no proxymap seen")
        print(f"  during a burst: at most {peak.connections} PostgreSQL connections, {peak.lookup_connections} "
              f"of them Postfix's lookup tables' (the others Dovecot's), {peak.proxymaps} proxymap processes: "
              f"Postfix's connections {per_proxymap}")
    finally:
        for instance in instances:
            instance.stop()
        if len(instances) > 1:
            stop_dovecot(instances[1])
        sink.terminate()
        sink.wait()
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
        namespace.delete()


if __name__ == "__main__":
    main()
