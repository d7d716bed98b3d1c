"""The cost of one Postfix lookup in the postfixadmin database: the two tables
an SMTP message to a mailbox costs (smtpd's quota check, cleanup's
virtual_alias_maps), through proxymap and straight from the client, with the
database reached over TCP (127.0.0.1) and over its Unix socket, measured
interleaved in one run.

Two Postfix instances are configured by the formula with pillar.example, one
with ``database:host`` 127.0.0.1 and one with the socket directory (the
lookup role logs in with its password on both). Each measurement is one
``postmap -q -`` reading --keys copies of postmaster@example.com (a mailbox
with room: the quota check answers OK) from standard input, so one client
asks one lookup after another; printed: CPU microseconds per lookup (the
whole machine's busy time over the run) and wall microseconds per lookup,
medians of --rounds, and the socket's ratio to TCP. ``proxy:`` is what
Postfix's daemons use (client -> proxymap -> PostgreSQL); without it the
client talks to PostgreSQL itself, so the difference is proxymap's hop.

Run as root: ``.venv/bin/python bench/lookup_bench.py [--rounds 7]``.
"""

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.smtp_bench import RECIPIENT, Configured, busy_ticks, sandbox  # noqa: E402

TABLES = ("quota_check", "virtual_alias_maps")


def lookups(side, table, proxied, keys):
    """(CPU us, wall us) per lookup of KEYS through TABLE of SIDE's instance."""
    config_dir = side.instance.config_dir
    name = f"{'proxy:' if proxied else ''}pgsql:{config_dir}/pgsql/{table}.cf"
    ticks, started = busy_ticks(), time.monotonic()
    found = subprocess.run(["postmap", "-c", str(config_dir), "-q", "-", name], input=f"{RECIPIENT}\n" * keys,
                           capture_output=True, text=True, timeout=600)
    seconds, ticks = time.monotonic() - started, busy_ticks() - ticks
    if found.returncode != 0 or len(found.stdout.splitlines()) != keys:
        raise RuntimeError(f"{side.name}: postmap -q - {name} failed: {found.stderr.strip()[:500]}")
    return ticks * 1e6 / os.sysconf("SC_CLK_TCK") / keys, seconds * 1e6 / keys


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keys", type=int, default=10000)
    args = parser.parse_args()
    with sandbox("lookup-bench-") as (base, pg, sides):
        for side in (Configured("TCP", "tcp", base, "127.0.0.3", pg),
                     Configured("socket", "socket", base, "127.0.0.4", pg, socket=True)):
            sides.append(side)
            side.configure()
        cases = [(side, table, proxied) for proxied in (True, False) for table in TABLES for side in sides]
        results = {case: [] for case in cases}
        for round_number in range(args.rounds):
            shift = round_number % len(cases)
            for case in cases[shift:] + cases[:shift]:
                results[case].append(lookups(*case, args.keys))

        median = statistics.median
        print(f"postmap -q -, {args.keys} lookups of a mailbox with room, medians of {args.rounds} rounds "
              "(CPU and wall microseconds per lookup):")
        for proxied in (True, False):
            for table in TABLES:
                cpu = {side.name: median(c for c, _ in results[side, table, proxied]) for side in sides}
                wall = {side.name: median(w for _, w in results[side, table, proxied]) for side in sides}
                label = f"{'proxy:' if proxied else ''}pgsql {table}"
                print(f"  {label:<32} TCP {cpu['TCP']:5.0f} CPU {wall['TCP']:5.0f} wall   "
                      f"socket {cpu['socket']:5.0f} CPU {wall['socket']:5.0f} wall   "
                      f"socket/TCP x{cpu['socket'] / cpu['TCP']:.2f} CPU")


if __name__ == "__main__":
    main()
