"""Seconds above ``salt-call test.ping`` of ``state.apply``: this formula against
naive baselines doing the same work, measured interleaved in one run.

Scenario "30 parameters": the 30 main.cf parameters of postconf_bench.py and
a submission service, on a running Postfix, three ways:

1. this formula (pillar ``postfix:main`` and ``postfix:master``),
2. "postconf -e": one ``cmd.run: postconf -e`` per parameter (``unless`` it
   already holds the value), the service with ``postconf -M``, ``postfix
   check`` and ``postfix reload`` on changes,
3. "template": main.cf rendered whole by ``file.managed``, the service with
   ``postconf -M``, ``postfix check`` and ``postfix reload`` on changes.

Each is timed on a first apply, a no-op re-apply and a re-apply with one
parameter changed (medians of --rounds, interleaved), each minus a
``salt-call test.ping`` run just before it on the same minion (this machine's
speed drifts by tens of percent within minutes: a ping measured once would
not be the same machine); the ratios formula/baseline are printed, and Salt's
own floor (state.apply of a single test.nop state, above test.ping).
saltstack-formulas/postfix-formula (vendored in bench/community-formula, or
--community PATH) does the same work from its pillar keys ``postfix:config``
and ``postfix:master_config``.

Scenario "pillar.example": the whole formula (PostgreSQL, lookup tables,
Dovecot, quota) on a fresh sandbox: first apply, no-op, one change.

Run as root: ``.venv/bin/python bench/apply_bench.py [--rounds 5]``. It makes
its own loopback-only network namespace, PostgreSQL cluster and Postfix
instances under /var/tmp, and removes them at the end.
"""

import argparse
import json
import os
import pathlib
import shlex
import shutil
import statistics
import sys
import tempfile
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.postconf_bench import PARAMETERS  # noqa: E402
from tests.harness.masterless import Masterless  # noqa: E402
from tests.harness.netns import Namespace  # noqa: E402
from tests.harness.pgcluster import PgCluster  # noqa: E402
from tests.harness.postfix_instance import PostfixInstance  # noqa: E402
from tests.harness.sandbox_pillar import create_database, overlay, stop_dovecot  # noqa: E402

PILLAR_EXAMPLE = REPO / "pillar.example"
SUBMISSION_OPTIONS = {
    "syslog_name": "postfix/submission",
    "smtpd_tls_security_level": "may",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_client_restrictions": "permit_mynetworks,reject",
}
SUBMISSION = {"private": "n", "chroot": "n", "command": "smtpd", "options": SUBMISSION_OPTIONS}
SUBMISSION_LINE = "submission/inet=submission inet n - n - - smtpd " + " ".join(
    f"-o {name}={value}" for name, value in SUBMISSION_OPTIONS.items())
#: the parameter the "one change" re-applies toggle
CHANGED = "smtpd_timeout"
COMMUNITY = REPO / "bench" / "community-formula"  # saltstack-formulas/postfix-formula, vendored


def median(values):
    return statistics.median(values) if values else float("nan")


class Method:
    """One way of applying the 30 parameters to its own running Postfix instance."""

    name = None

    def __init__(self, base, address):
        self.instance = PostfixInstance(base / self.name.replace(" ", "-"), address=address).create()
        self.instance.start()
        self.minion = Masterless(base / f"salt-{self.name.replace(' ', '-')}").write_config()
        self.times = {"first apply": [], "no-op": [], "one change": []}

    def params(self, variant):
        return {**PARAMETERS, CHANGED: f"{60 + variant}s"}

    def run(self, phase, variant):
        ping = seconds_of(self.minion, "test.ping")
        started = time.monotonic()
        rc, output = self.apply(variant)
        elapsed = time.monotonic() - started - ping
        if rc != 0:
            raise RuntimeError(f"{self.name}: {phase} failed ({rc}): {json.dumps(output)[:2000]}")
        got = self.instance.postconf("-h", CHANGED).strip()
        if got != self.params(variant)[CHANGED]:
            raise RuntimeError(f"{self.name}: {phase}: {CHANGED} is {got!r}")
        self.times[phase].append(elapsed)


class Formula(Method):
    name = "formula"

    def apply(self, variant):
        self.minion.set_pillar({"postfix": {
            "config_dir": str(self.instance.config_dir),
            "lookup": {"queue_directory": str(self.instance.queue_dir)},
            "main": self.params(variant),
            "master": {"submission/inet": SUBMISSION},
        }})
        return self.minion.apply("postfix")


def _reload_states(config_dir, watched):
    postfix = shlex.quote(str(config_dir))
    return {
        "reload": {"cmd.run": [
            {"name": f"postfix -c {postfix} check && postfix -c {postfix} reload"},
            {"onchanges": watched},
        ]},
    }


def _submission_state(config_dir):
    postconf = f"postconf -c {shlex.quote(str(config_dir))}"
    return {"submission": {"cmd.run": [
        {"name": f"{postconf} -M {shlex.quote(SUBMISSION_LINE)}"},
        {"unless": f"{postconf} -M submission/inet | grep -q smtpd"},
    ]}}


class PostconfPerParameter(Method):
    name = "postconf -e"

    def apply(self, variant):
        postconf = f"postconf -c {shlex.quote(str(self.instance.config_dir))}"
        states = {}
        for name, value in self.params(variant).items():
            states[f"main-{name}"] = {"cmd.run": [
                {"name": f"{postconf} -e {shlex.quote(f'{name}={value}')}"},
                {"unless": f"test \"$({postconf} -h {name})\" = {shlex.quote(value)}"},
            ]}
        states.update(_submission_state(self.instance.config_dir))
        states.update(_reload_states(self.instance.config_dir, [{"cmd": key} for key in states]))
        return self.minion.salt_call("state.template_str", yaml.safe_dump(states, default_flow_style=False))[:2]


class Template(Method):
    name = "template"

    def apply(self, variant):
        params = {**self.instance.host_parameters(), **self.params(variant)}
        contents = "".join(f"{name} = {value}\n" for name, value in params.items())
        states = {"main-cf": {"file.managed": [
            {"name": str(self.instance.config_dir / "main.cf")}, {"contents": contents}]}}
        states.update(_submission_state(self.instance.config_dir))
        states.update(_reload_states(self.instance.config_dir, [{"file": "main-cf"}, {"cmd": "submission"}]))
        return self.minion.salt_call("state.template_str", yaml.safe_dump(states, default_flow_style=False))[:2]


class Community(Method):
    """saltstack-formulas/postfix-formula from a checkout on disk (bench/community-formula)."""

    name = "community formula"

    def __init__(self, base, address, checkout):
        self.checkout = checkout
        super().__init__(base, address)
        root = self.minion.base / "file-root"
        link = root / "postfix"
        link.unlink()
        link.symlink_to(checkout / "postfix")
        # Its postfix.config (which includes its package and service states) and,
        # in place of its service state's reload, which needs systemd and so does
        # not reach this sandbox instance, the `postfix reload` that reload runs.
        config_dir = shlex.quote(str(self.instance.config_dir))
        (root / "community_reloaded.sls").write_text(yaml.safe_dump({
            "include": ["postfix.config"],
            "community-reload": {"cmd.run": [
                {"name": f"postfix -c {config_dir} reload"},
                {"onchanges": [{"file": "postfix-config-file-managed-main.cf"},
                               {"file": "postfix-config-file-managed-master.cf"}]},
            ]},
        }))

    def apply(self, variant):
        self.minion.set_pillar({"postfix": {
            "manage_master_config": True,
            "master_config": {"services": {"submission": {"enable": True, "args": [
                f"-o {name}={value}" for name, value in SUBMISSION_OPTIONS.items()]}}},
            # its main.cf template writes the whole file: the instance's own settings too
            "config": {**self.instance.host_parameters(), **self.params(variant)},
            "lookup": {"config_path": str(self.instance.config_dir)},
        }})
        return self.minion.apply("community_reloaded")


def seconds_of(minion, *args):
    """Seconds one salt-call ARGS takes."""
    started = time.monotonic()
    minion.salt_call(*args, check=True)
    return time.monotonic() - started


def above_ping(minion, rounds, *args):
    """Median seconds salt-call ARGS takes above a test.ping run just before it."""
    return median([-seconds_of(minion, "test.ping") + seconds_of(minion, *args) for _ in range(rounds)])


def salt_floor(minion, rounds):
    """Seconds above test.ping of state.apply of one test.nop state: what any state run costs."""
    (minion.write_file_root() / "nop.sls").write_text("nop:\n  test.nop: []\n")
    return above_ping(minion, rounds, "state.apply", "nop")


def thirty_parameters(base, rounds, checkout):
    methods = []
    try:
        for method, address in ((Formula, "127.0.0.2"), (PostconfPerParameter, "127.0.0.3"),
                                (Template, "127.0.0.4"), (Community, "127.0.0.5")):
            methods.append(method(base, address, checkout) if method is Community else method(base, address))
        for method in methods:
            method.run("first apply", 0)
        for index in range(rounds):
            for method in methods:
                method.run("no-op", 2 * index)
                method.run("one change", 2 * index + 1)
                method.run("no-op", 2 * index + 1)
                method.run("one change", 2 * index + 2)
    finally:
        for method in methods:
            method.instance.stop()
    print(f"\n30 parameters + submission (seconds above test.ping; first apply: one run, the others medians of "
          f"{rounds * 2})")
    above = {method.name: {phase: median(times) for phase, times in method.times.items()} for method in methods}
    print(f"{'method':<20}" + "".join(f"{phase:>14}" for phase in methods[0].times))
    for name, phases in above.items():
        print(f"{name:<20}" + "".join(f"{seconds:>13.2f}s" for seconds in phases.values()))
    for other in above:
        if other == "formula":
            continue
        ratios = "  ".join(f"{phase} x{above['formula'][phase] / seconds:.2f}" if seconds > 0 else f"{phase} -"
                           for phase, seconds in above[other].items())
        print(f"formula / {other}: {ratios}")


def pillar_example(base, rounds):
    pg = PgCluster(base / "pg").start()
    instance = PostfixInstance(base / "example", address="127.0.0.6", hostname="mx1.example.com").create()
    minion = Masterless(base / "salt-example", minion_id="mx1.example.com").write_config()
    try:
        database, lookup_user = create_database(pg, "postfixadmin")
        times = {"first apply": [], "no-op": [], "one change": []}
        banner = "$myhostname ESMTP NO UCE"
        schedule = [("first apply", banner)]
        for index in range(rounds):
            schedule += [("no-op", None), ("one change", f"$myhostname ESMTP NO UCE {index}")]
        for phase, new_banner in schedule:
            banner = new_banner or banner
            layers = [PILLAR_EXAMPLE, overlay(instance, database, lookup_user),
                      {"postfix": {"hardening": {"banner": banner}}}]
            minion.set_pillar(*layers)
            ping = seconds_of(minion, "test.ping")
            started = time.monotonic()
            rc, output = minion.apply("postfix")
            times[phase].append(time.monotonic() - started - ping)
            if rc != 0:
                raise RuntimeError(f"pillar.example {phase} failed ({rc}): {json.dumps(output)[:2000]}")
        print(f"\npillar.example on a fresh sandbox (seconds above test.ping; no-op and one change: medians of "
              f"{rounds})")
        print("".join(f"{phase:>14}" for phase in times))
        print("".join(f"{median(values):>13.2f}s" for values in times.values()))
    finally:
        instance.stop()
        stop_dovecot(instance)
        pg.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--community", type=pathlib.Path, help=f"another checkout of saltstack-formulas/postfix-formula "
                        f"(default: {COMMUNITY.relative_to(REPO)})")
    parser.add_argument("--only", choices=["30", "example"], help="run one scenario")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the bench makes a network namespace and starts daemons")
    namespace = Namespace().create().enter()
    base = pathlib.Path(tempfile.mkdtemp(prefix="apply-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    checkout = args.community or COMMUNITY
    try:
        minion = Masterless(base / "salt-ping").write_config()
        rounds = max(3, args.rounds)
        ping = median([seconds_of(minion, "test.ping") for _ in range(rounds)])
        print(f"test.ping {ping:.2f}s; state.apply of one test.nop state: {salt_floor(minion, rounds):.2f}s "
              "above it (Salt's own floor for any state run)")
        if args.only in (None, "30"):
            thirty_parameters(base, args.rounds, checkout)
        if args.only in (None, "example"):
            pillar_example(base, args.rounds)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        namespace.delete()


if __name__ == "__main__":
    main()
