"""A formula-managed mail host in the sandbox: one Postfix instance, its
postfixadmin database and a masterless minion that applies the formula to it
with pillar.example, the sandbox overlay and the test's own pillar layered."""

import json
import pathlib

from tests.harness import sandbox_pillar
from tests.harness.masterless import REPO, Masterless
from tests.harness.postfix_instance import PostfixInstance
from tests.harness.procs import run, stop_pidfile

PILLAR_EXAMPLE = REPO / "pillar.example"
#: seconds one state.apply may take before the test calls it hung
APPLY_TIMEOUT = 120


class ApplyResult:
    """What one state.apply returned: the exit status and the state results by state id."""

    def __init__(self, returncode, states):
        self.returncode = returncode
        self.states = states if isinstance(states, dict) else {}
        self.raw = states

    def failures(self):
        """'state id: comment' of every state that failed (or the raw output when there are no results)."""
        if not self.states:
            errors = self.raw if isinstance(self.raw, list) else [str(self.raw)]
            return [f"not applied: {str(error).splitlines()[0][:600]}" for error in errors]
        return [
            f"{key.split('_|-')[1]}: {value.get('comment')}"
            for key, value in self.states.items()
            if isinstance(value, dict) and value.get("result") is False
        ]

    def check(self):
        """Raise with the failed states unless the apply succeeded."""
        problems = self.failures()
        if self.returncode != 0 or problems:
            raise AssertionError(f"state.apply failed (exit {self.returncode}):\n" + "\n".join(problems))
        return self


class Site:
    """A mail host: NAME is the minion id and the database/role suffix."""

    def __init__(self, base, pg, name, hostname, address):
        self.base = pathlib.Path(base)
        self.pg = pg
        self.name = name
        self.instance = PostfixInstance(self.base / "postfix", address=address, hostname=hostname)
        self.minion = Masterless(self.base / "salt", minion_id=name)
        self.database = None
        self.lookup_user = None
        self.overlay = None
        self._configured = None  # (settings, failure) of the last configure()

    @property
    def address(self):
        return self.instance.address

    @property
    def hostname(self):
        return self.instance.hostname

    def create(self):
        """Make the Postfix instance (not started), the minion's config and the postfixadmin database."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.instance.create()
        self.minion.write_config()
        self.database, self.lookup_user = sandbox_pillar.create_database(self.pg, f"postfixadmin_{self.name}")
        self.overlay = sandbox_pillar.overlay(self.instance, self.database, self.lookup_user)
        return self

    def dovecot(self):
        """The sandbox overlay's dovecot settings (paths of this host's Dovecot)."""
        return self.overlay["postfix"]["dovecot"]

    def maildir(self, address):
        """Where Dovecot delivers ADDRESS: MAIL_ROOT/DOMAIN/USER (its maildir root)."""
        local_part, domain = address.split("@")
        return pathlib.Path(self.dovecot()["mail_root"]) / domain / local_part

    def apply(self, *settings, sls="postfix"):
        """Apply SLS with pillar.example, the sandbox overlay and SETTINGS (dicts of the `postfix` tree,
        merged in order, later wins). A run that hangs is stopped after APPLY_TIMEOUT seconds and
        reported with the state it was stuck in (the minion log's last lines)."""
        layers = [PILLAR_EXAMPLE, self.overlay, *({"postfix": setting} for setting in settings)]
        self.minion.set_pillar(*layers)
        returncode, states = self.minion.apply(sls, timeout=APPLY_TIMEOUT)
        return ApplyResult(returncode, states)

    def configure(self, *settings):
        """Make SETTINGS this host's configuration: apply them unless they are what the last
        configure() applied (a failed apply is reported again, not retried). Returns the host."""
        if self._configured is None or self._configured[0] != settings:
            try:
                self.apply(*settings).check()
                self._configured = (settings, None)
            except AssertionError as failure:
                self._configured = (settings, failure)
        if self._configured[1] is not None:
            raise self._configured[1]
        return self

    def postconf(self, name):
        """The effective value of a main.cf parameter."""
        return self.instance.postconf("-h", name).strip()

    def queue(self):
        """The queue as `postqueue -j` lists it (one dict per message)."""
        output = run(["postqueue", "-c", str(self.instance.config_dir), "-j"]).stdout
        return [json.loads(line) for line in output.splitlines() if line.strip()]

    def queued_message(self, queue_id):
        """Headers and body of a queued message (postcat)."""
        return run(["postcat", "-c", str(self.instance.config_dir), "-hb", "-q", queue_id]).stdout

    def flush(self):
        """Ask Postfix to deliver everything queued now (postqueue -f)."""
        run(["postqueue", "-c", str(self.instance.config_dir), "-f"])

    def destroy(self):
        """Stop everything the formula started for this host and drop its database."""
        self.instance.stop()
        postfix = self.overlay["postfix"]
        stop_pidfile(pathlib.Path(postfix["dovecot"]["base_dir"]) / "master.pid")
        stop_pidfile(pathlib.Path(postfix["performance"]["dns_cache"]["pidfile"]))
        self.pg.drop_database(self.database["dbname"])
        for role in (self.database["user"], self.lookup_user["name"]):
            self.pg.psql(f'DROP ROLE IF EXISTS "{role}"')
