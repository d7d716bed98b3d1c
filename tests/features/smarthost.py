"""A smarthost for the relayhost tests: a second sandboxed Postfix whose
submission port (587) relays only for clients that AUTH (a Dovecot of its
own with one user in a passwd-file) after STARTTLS, and keeps what it accepts in its queue
(it has nowhere to send it inside the sandbox)."""

import json
import subprocess

from tests.e2e.polling import wait_until
from tests.harness.procs import run, stop_pidfile

USERNAME = "mx1-relay@smarthost.test"
PASSWORD = "s3cret-relay-pw"


class Smarthost:
    def __init__(self, instance, test_ca):
        self.instance = instance
        self.test_ca = test_ca

    def create(self):
        instance = self.instance
        self.dovecot_dir = instance.base / "dovecot"
        run_dir = self.dovecot_dir / "run"
        for directory in (run_dir, self.dovecot_dir / "lib"):
            directory.mkdir(parents=True)
        passwd = self.dovecot_dir / "passwd"
        passwd.write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
        run(["chown", "root:dovecot", str(passwd)])
        passwd.chmod(0o640)
        config = self.dovecot_dir / "dovecot.conf"
        config.write_text(
            f"protocols = none\nbase_dir = {run_dir}\nstate_dir = {self.dovecot_dir / 'lib'}\n"
            f"log_path = {instance.base / 'log' / 'dovecot.log'}\nssl = no\nauth_mechanisms = plain login\n"
            f"passdb {{\n  driver = passwd-file\n  args = {passwd}\n}}\n"
            "userdb {\n  driver = static\n  args = uid=nobody gid=nogroup home=/nonexistent\n}\n"
            f"service auth {{\n  unix_listener {instance.queue_dir}/private/auth {{\n"
            "    mode = 0660\n    user = postfix\n    group = postfix\n  }\n}\n"
        )
        cert, key = self.test_ca.write("smarthost", instance.hostname)
        instance.postconf(
            "-e",
            f"smtpd_tls_cert_file = {cert}",
            f"smtpd_tls_key_file = {key}",
            "defer_transports = smtp relay",
        )
        instance.postconf("-M", "submission/inet=submission inet n - n - - smtpd")
        for option in ("smtpd_tls_security_level=encrypt", "smtpd_sasl_auth_enable=yes", "smtpd_sasl_type=dovecot",
                       "smtpd_sasl_path=private/auth", "smtpd_tls_auth_only=yes",
                       "smtpd_relay_restrictions=permit_sasl_authenticated,reject"):
            name, value = option.split("=", 1)
            instance.postconf("-P", f"submission/inet/{name}={value}")
        instance.backdate()
        instance.start()
        # Dovecot daemonizes keeping its stdout: no pipes to wait on
        subprocess.run(["dovecot", "-c", str(config)], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: (instance.queue_dir / "private" / "auth").exists())
        return self

    def stop(self):
        stop_pidfile(self.dovecot_dir / "run" / "master.pid")

    def queued(self):
        """The messages in the smarthost's queue: [{sender, recipients}]."""
        out = run(["postqueue", "-c", str(self.instance.config_dir), "-j"]).stdout
        return [
            {"sender": entry["sender"], "recipients": [r["address"] for r in entry["recipients"]]}
            for entry in map(json.loads, out.splitlines())
        ]

    def maillog(self):
        return self.instance.maillog.read_text() if self.instance.maillog.exists() else ""
