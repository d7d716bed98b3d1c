"""A run killed at any point leaves nothing the next run does not finish: with
salt-call killed right after main.cf, master.cf or Dovecot's configuration was
written (before the reloads those owe), the next apply reloads what is owed,
SMTP serves the new configuration, and the apply after that changes nothing."""

import os
import signal
import smtplib
import subprocess
import time

import pytest

from tests.formula.conftest import PILLAR_EXAMPLE
from tests.harness.masterless import SALT_CALL
from tests.harness.procs import wait_for_port

#: HELO checks a client passes without DNS (there is none here)
LOCAL_CLIENT = {"postfix": {"hardening": {"helo_restrictions": "safe"}}}


def changed_everywhere(instance):
    """A change that touches main.cf, master.cf and Dovecot's side at once."""
    return {"postfix": {
        "hardening": {"banner": "$myhostname ESMTP changed"},
        "submission": {"options": {"smtpd_client_connection_count_limit": 7}},
        "dovecot": {"quota_status_listen": {"port": 12341}},
    }}


def apply_killed_after(sandbox, layers, state_name, timeout=240):
    """Apply LAYERS and SIGKILL salt-call (its whole process group) as soon as the
    minion log says STATE_NAME completed; True if it was killed before it finished."""
    sandbox.masterless.set_pillar(*layers, sandbox.overlay)
    log = sandbox.masterless.base / "minion.log"
    offset = log.stat().st_size if log.exists() else 0
    argv = [str(SALT_CALL), "--local", f"--config-dir={sandbox.masterless.config_dir}", "--log-level=quiet",
            "state.apply", "postfix"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = f"Completed state [{state_name}]"
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with open(log, "rb") as handle:
                handle.seek(offset)
                if marker in handle.read().decode(errors="replace"):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return True
            time.sleep(0.01)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rcpt(address, recipient):
    """(code, message) of RCPT TO:<RECIPIENT> in a new SMTP session on ADDRESS:25."""
    with smtplib.SMTP(address, 25, local_hostname="client.example.test", timeout=20) as smtp:
        smtp.ehlo()
        code, message = smtp.mail("sender@client.example.test")
        if code == 250:
            code, message = smtp.rcpt(recipient)
        return code, message.decode()


@pytest.fixture
def serving(formula_sandbox):
    """pillar.example applied and serving."""
    formula_sandbox.apply_ok(PILLAR_EXAMPLE, LOCAL_CLIENT)
    return formula_sandbox


@pytest.mark.parametrize("kill_after", ["main.cf", "master.cf", "dovecot.conf"])
def test_next_apply_pays_what_a_killed_run_owed(serving, kill_after):
    sandbox = serving
    instance = sandbox.instance
    state_name = {"main.cf": instance.config_dir / "main.cf", "master.cf": instance.config_dir / "master.cf",
                  "dovecot.conf": sandbox.overlay["postfix"]["dovecot"]["config_dir"] + "/dovecot.conf"}[kill_after]
    layers = (PILLAR_EXAMPLE, LOCAL_CLIENT, changed_everywhere(instance))
    assert apply_killed_after(sandbox, layers, state_name), f"the run ended before {kill_after} was written"

    sandbox.apply_ok(*layers)
    with smtplib.SMTP(timeout=20) as smtp:
        assert smtp.connect(instance.address, 25)[1].decode() == f"{instance.hostname} ESMTP changed"
    assert "smtpd_client_connection_count_limit=7" in sandbox.service_lines()["submission/inet"]
    wait_for_port(instance.address, 12341, timeout=10)
    code, message = rcpt(instance.address, "postmaster@example.com")
    assert code == 250, f"quota-status answers where main.cf asks: {code} {message}"
    assert sandbox.apply_ok(*layers) == {}, "the run after that changes nothing"
