"""Fixtures for applying the formula with salt-call --local to a sandbox:
a sandboxed Postfix instance, its own database and the sandbox pillar layer."""

import itertools
import pathlib

import pytest

from tests.harness import salt_modules
from tests.harness.masterless import changed_states
from tests.harness.procs import run
from tests.harness.sandbox_pillar import create_database, overlay, stop_dovecot

REPO = pathlib.Path(__file__).resolve().parents[2]
PILLAR_EXAMPLE = REPO / "pillar.example"
_database_counter = itertools.count(1)


class FormulaSandbox:
    """One Postfix instance + database; applies pillar layers with the sandbox layer on top."""

    def __init__(self, instance, masterless, database, lookup_user):
        self.instance = instance
        self.masterless = masterless
        self.database = database
        self.lookup_user = lookup_user

    @property
    def overlay(self):
        return overlay(self.instance, self.database, self.lookup_user)

    def apply(self, *layers, sls="postfix", test=False):
        """Apply SLS with LAYERS (+ the sandbox layer); returns (rc, {state_id: result})."""
        self.masterless.set_pillar(*layers, self.overlay)
        return self.masterless.apply(sls, test=test)

    def apply_ok(self, *layers, sls="postfix", test=False):
        """Apply and insist every state succeeded; returns the changed states."""
        rc, result = self.apply(*layers, sls=sls, test=test)
        assert isinstance(result, dict), f"salt-call failed: {result}"
        failed = {key: value["comment"] for key, value in result.items() if value["result"] is False}
        assert rc == 0 and not failed, f"rc={rc} failed states: {failed}"
        return changed_states(result)

    def main_cf(self):
        """postconf -n as a dict."""
        lines = self.instance.postconf("-n").splitlines()
        return dict(line.split(" = ", 1) if " = " in line else (line.rstrip(" ="), "") for line in lines)

    def main_cf_bytes(self):
        return (self.instance.config_dir / "main.cf").read_bytes()

    def service_lines(self):
        """postconf -M: {"name/type": the whole line}."""
        services = {}
        for line in self.instance.postconf("-M").splitlines():
            name, service_type = line.split()[:2]
            services[f"{name}/{service_type}"] = " ".join(line.split())
        return services

    def postmap(self, key, table):
        """postmap -q KEY pgsql:TABLE (None if not found)."""
        result = run(["postmap", "-c", str(self.instance.config_dir), "-q", key, f"pgsql:{table}"], check=False)
        return result.stdout.strip() if result.returncode == 0 else None


@pytest.fixture(scope="session")
def postfixadmin_module():
    """postfixadmin.* (_modules/postfixadmin*.py) imported directly: seeds a primary's database without a
    Salt loader (its functions need no Salt context when given `database`)."""
    return salt_modules.load_virtual("modules", "postfixadmin")


@pytest.fixture
def formula_sandbox(pg, postfix_factory, masterless):
    """A FormulaSandbox with a fresh instance (not started) and database."""
    database, lookup_user = create_database(pg, f"pfa{next(_database_counter)}")
    sandbox = FormulaSandbox(postfix_factory(), masterless, database, lookup_user)
    yield sandbox
    stop_dovecot(sandbox.instance)
    pg.drop_database(database["dbname"])
