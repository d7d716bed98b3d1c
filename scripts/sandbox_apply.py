"""Apply the formula to a throwaway sandbox and report what it configured.

The sandbox: a loopback-only network namespace, a PostgreSQL cluster with a
postfixadmin database and a read-only lookup role, and a Postfix instance
whose configuration lives under the scratch directory (the host's
/etc/postfix is never touched). The formula is applied with
``salt-call --local`` from this repository, with pillar.example and the
sandbox layer. Everything is stopped and removed afterwards unless --keep.

With --fresh the formula goes instead to a bare Debian 12 host (a root
filesystem with nothing but python3 and Salt, chrooted in its own mount and
PID namespace inside the sandbox namespace; tests/harness/fresh_host.py):
one ``state.apply postfix`` installs the packages from the host's apt
source, configures and starts Postfix and Dovecot there.

Run it through scripts/sandbox-apply (installs what is missing first).
"""

import argparse
import os
import pathlib
import shutil
import smtplib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.fresh_host import FreshHost, build_image, pillar_layer  # noqa: E402
from tests.harness.masterless import Masterless, changed_states  # noqa: E402
from tests.harness.netns import Namespace  # noqa: E402
from tests.harness.pgcluster import PgCluster  # noqa: E402
from tests.harness.postfix_instance import PostfixInstance  # noqa: E402
from tests.harness.procs import run  # noqa: E402
from tests.harness.sandbox_pillar import create_database, overlay, stop_dovecot  # noqa: E402

PILLAR_EXAMPLE = REPO / "pillar.example"
NAMESPACE = "pfx-sandbox"
ADDRESS = "127.0.0.2"
HOSTNAME = "mx1.example.com"
SHOWN_PARAMETERS = (
    "smtpd_banner", "smtpd_helo_required", "smtpd_helo_restrictions", "disable_vrfy_command",
    "message_size_limit", "biff", "default_process_limit", "virtual_mailbox_domains", "virtual_transport",
    "relay_domains", "smtpd_recipient_restrictions",
)
PROBES = {"virtual_mailbox_domains": "example.com", "virtual_mailbox_maps": "postmaster@example.com",
          "virtual_alias_maps": "abuse@example.com"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true",
                        help="apply to a bare Debian 12 host (chroot) instead of this machine's packages")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running and print how to reach it")
    parser.add_argument("--pillar", action="append", type=pathlib.Path, default=[],
                        help="extra pillar YAML layered over pillar.example (repeatable)")
    parser.add_argument("--base", type=pathlib.Path, default=pathlib.Path(f"/var/tmp/pfx-sandbox-{os.getpid()}"),
                        help="scratch directory (default: %(default)s)")
    parser.add_argument("--destroy", type=pathlib.Path, metavar="BASE",
                        help="stop and remove a sandbox left by --keep (its scratch directory)")
    return parser.parse_args()


class Sandbox:
    """The namespace, database and Postfix instance the formula is applied to."""

    def __init__(self, base):
        self.base = base
        self.namespace = Namespace(NAMESPACE)
        self.pg = PgCluster(base / "pg")
        self.instance = PostfixInstance(base / "postfix", address=ADDRESS, hostname=HOSTNAME)
        self.masterless = Masterless(base / "salt", minion_id=HOSTNAME)

    def create(self):
        self.base.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.namespace.create().enter()
        self.pg.start()
        self.database, self.lookup_user = create_database(self.pg, "postfixadmin")
        self.instance.create()
        self.masterless.write_config()
        return self

    def apply(self, layers):
        self.masterless.set_pillar(PILLAR_EXAMPLE, *layers, overlay(self.instance, self.database, self.lookup_user))
        started = time.monotonic()
        rc, result = self.masterless.apply("postfix")
        return rc, result, time.monotonic() - started

    @property
    def address(self):
        return self.instance.address

    @property
    def tables_dir(self):
        return self.instance.config_dir / "pgsql"

    def postconf(self, *args):
        return self.instance.postconf(*args)

    def postmap(self, probe, table):
        config_dir = str(self.instance.config_dir)
        return run(["postmap", "-c", config_dir, "-q", probe, f"pgsql:{self.tables_dir / table}"], check=False).stdout

    def describe(self):
        return (f"namespace {NAMESPACE}, Postfix {HOSTNAME} on {ADDRESS} (config {self.instance.config_dir}), "
                f"PostgreSQL {self.database['host']}:{self.database['port']}/{self.database['dbname']}")

    def kept(self):
        return (f"run commands inside with `ip netns exec {NAMESPACE} ...`, e.g. "
                f"`ip netns exec {NAMESPACE} postconf -c {self.instance.config_dir} -n`; "
                f"Postfix log {self.instance.maillog}")

    def destroy(self):
        self.instance.stop()
        stop_dovecot(self.instance)
        self.pg.stop()
        self.namespace.delete()
        shutil.rmtree(self.base, ignore_errors=True)


def report_run(rc, result, seconds):
    if not isinstance(result, dict):
        print(f"salt-call failed (exit {rc}):")
        for message in result if isinstance(result, list) else [str(result)]:
            print("  " + message.split("\n")[0])
        return False
    failed = {value["__id__"]: value["comment"] for value in result.values() if value["result"] is False}
    print(f"state.apply postfix: {len(result)} states, {len(changed_states(result))} changed, "
          f"{len(failed)} failed, {seconds:.0f}s (exit {rc})")
    for state_id, comment in failed.items():
        print(f"  FAILED {state_id}: {comment}")
    installed = sorted(name for key, value in result.items() if key.startswith("pkg_|-") for name in value["changes"])
    if installed:
        print(f"  installed {len(installed)} packages: {' '.join(installed)}")
    return rc == 0 and not failed


class FreshSandbox:
    """The namespace, database and a bare Debian 12 host the formula is applied to."""

    def __init__(self, base, keep=False):
        self.base = base
        self.keep = keep
        self.namespace = Namespace(NAMESPACE)
        self.pg = PgCluster(base / "pg")
        self.host = None

    def create(self):
        image = build_image()  # before entering the namespace: building needs Debian's mirror
        self.base.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.namespace.create().enter()
        self.pg.start()
        self.database, self.lookup_user = create_database(self.pg, "postfixadmin")
        self.host = FreshHost(image, self.base / "host", ADDRESS, HOSTNAME, outlive_caller=self.keep).start()
        rc, output = self.host.salt_call("saltutil.sync_all")
        if rc != 0:
            raise RuntimeError(f"saltutil.sync_all failed on the fresh host: {output}")
        return self

    def apply(self, layers):
        self.host.set_pillar(PILLAR_EXAMPLE, *layers, pillar_layer(self.host, self.database, self.lookup_user))
        started = time.monotonic()
        rc, result = self.host.apply("postfix")
        return rc, result, time.monotonic() - started

    @property
    def address(self):
        return self.host.address

    @property
    def tables_dir(self):
        return self.host.root / "etc" / "postfix" / "pgsql"

    def postconf(self, *args):
        return self.host.run("postconf", *args).stdout

    def postmap(self, probe, table):
        return self.host.run("postmap", "-q", probe, f"pgsql:/etc/postfix/pgsql/{table}", check=False).stdout

    def stock_services(self):
        """The services of Debian's own master.cf (what the formula added to is shown)."""
        stock = "/tmp/stock-master-cf"
        self.host.run("mkdir", "-p", stock)
        self.host.run("cp", "/usr/share/postfix/master.cf.dist", f"{stock}/master.cf")
        self.host.run("touch", f"{stock}/main.cf")
        return {" ".join(line.split()[:2]) for line in self.host.run("postconf", "-c", stock, "-M").stdout.splitlines()}

    def describe(self):
        return (f"namespace {NAMESPACE}, a bare Debian 12 host {HOSTNAME} on {ADDRESS} (root {self.host.mountpoint} "
                f"in the mount namespace of pid {self.host.pid}), PostgreSQL {self.database['host']}:"
                f"{self.database['port']}/{self.database['dbname']}")

    def kept(self):
        return (f"run commands on the host with `nsenter -t {self.host.pid} -m -p -u -r -w -- COMMAND`, e.g. "
                f"`nsenter -t {self.host.pid} -m -p -u -r -w -- postconf -n`; logs /var/log/postfix.log, "
                f"/var/log/dovecot.log there; SMTP clients with `ip netns exec {NAMESPACE} swaks --server {ADDRESS}`")

    def destroy(self):
        if self.host:
            self.host.stop()
        else:
            FreshHost.stop_left(self.base / "host")
        self.pg.stop()
        self.namespace.delete()
        shutil.rmtree(self.base, ignore_errors=True)


def report_main_cf(target):
    settings = dict(line.split(" = ", 1) for line in target.postconf("-n").splitlines() if " = " in line)
    print("main.cf (postconf -n, selected):")
    for name in SHOWN_PARAMETERS:
        if name in settings:
            print(f"  {name} = {settings[name]}")


def service_keys(target):
    return {" ".join(line.split()[:2]) for line in target.postconf("-M").splitlines()}


def report_master_cf(target, before):
    lines = target.postconf("-M").splitlines()
    added = [" ".join(line.split()) for line in lines if " ".join(line.split()[:2]) not in before]
    print(f"master.cf (postconf -M): {len(lines)} services, added by the formula:")
    for line in added:
        print(f"  {line}")


def report_tables(target):
    tables_dir = target.tables_dir
    print(f"lookup tables ({tables_dir}):")
    for table in sorted(tables_dir.glob("*.cf")) if tables_dir.is_dir() else []:
        probe = PROBES.get(table.stem)
        found = ""
        if probe:
            found = f"  postmap -q {probe} -> {target.postmap(probe, table.name).strip() or 'not found'}"
        print(f"  {table.name} {table.stat().st_mode & 0o777:04o}{found}")


def report_smtp(target):
    print("SMTP (a real connection):")
    for port in (25, 587):
        try:
            with smtplib.SMTP(timeout=10) as smtp:
                _, banner = smtp.connect(target.address, port)
                smtp.ehlo("client.example.com")
                features = ", ".join(sorted(smtp.esmtp_features)) or "-"
                print(f"  port {port}: banner '{banner.decode()}'; EHLO offers {features}")
        except (OSError, smtplib.SMTPException) as exc:
            print(f"  port {port}: {exc}")


def destroy_kept(base):
    sandbox = FreshSandbox(base) if (base / "host").is_dir() else Sandbox(base)
    sandbox.namespace.enter()
    sandbox.destroy()
    print(f"sandbox {base} stopped and removed")
    return 0


def main():
    if os.geteuid() != 0:
        raise SystemExit("sandbox-apply runs as root: it creates a network namespace and starts daemons")
    args = parse_args()
    if args.destroy:
        return destroy_kept(args.destroy)
    if pathlib.Path(f"/run/netns/{NAMESPACE}").exists():
        raise SystemExit(f"a sandbox is already running (namespace {NAMESPACE}): "
                         "remove it with scripts/sandbox-apply --destroy BASE")
    sandbox = FreshSandbox(args.base, keep=args.keep) if args.fresh else Sandbox(args.base)
    ok = False
    try:
        sandbox.create()
        print(f"sandbox: {sandbox.describe()}")
        services_before = None if args.fresh else service_keys(sandbox)  # a bare host has no postconf yet
        ok = report_run(*sandbox.apply(args.pillar))
        if ok:
            report_main_cf(sandbox)
            report_master_cf(sandbox, sandbox.stock_services() if args.fresh else services_before)
            report_tables(sandbox)
            report_smtp(sandbox)
    finally:
        if args.keep:
            print(f"kept: {sandbox.kept()}; remove it with scripts/sandbox-apply --destroy {args.base}")
        else:
            sandbox.destroy()
            print("sandbox stopped and removed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
