"""An auth-only Dovecot (no listeners) on a postfixadmin database, with
postfixadmin's documented password query (DOCUMENTS/Password_Expiration.md:
a mailbox whose password expired is refused unless its domain sets no
expiry), to prove which stored hashes Dovecot accepts (doveadm auth test)."""

import pathlib
import subprocess

from tests.harness.procs import run


def _quoted(value):
    """A libpq connect-string value (Dovecot passes the string to libpq)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


PASSWORD_QUERY = (
    "SELECT m.username AS user, m.password FROM mailbox m JOIN domain d ON d.domain = m.domain "
    "WHERE m.username = '%u' AND m.active = true AND (m.password_expiry > now() OR d.password_expiry = 0)"
)


class Dovecot:
    def __init__(self, base, database):
        self.base = pathlib.Path(base)
        self.database = database
        self.conf = self.base / "dovecot.conf"
        self.log = self.base / "dovecot.log"

    def start(self):
        for directory in ("run", "state"):
            (self.base / directory).mkdir(parents=True, exist_ok=True)
        db = self.database
        connect = " ".join(f"{key}={_quoted(db[key])}" for key in ("host", "port", "dbname", "user", "password"))
        sql_conf = self.base / "dovecot-sql.conf.ext"
        sql_conf.write_text(
            f"driver = pgsql\nconnect = {connect}\ndefault_pass_scheme = SHA512-CRYPT\n"
            f"password_query = {PASSWORD_QUERY}\n"
        )
        sql_conf.chmod(0o600)
        self.conf.write_text(
            f"base_dir = {self.base / 'run'}\nstate_dir = {self.base / 'state'}\nlog_path = {self.log}\n"
            "protocols =\nssl = no\nauth_mechanisms = plain\ndisable_plaintext_auth = no\n"
            f"passdb {{\n  driver = sql\n  args = {sql_conf}\n}}\n"
            "userdb {\n  driver = static\n  args = uid=65534 gid=65534 home=/nonexistent\n}\n"
        )
        # Dovecot daemonizes: its children must not hold a pipe of ours open.
        startup = self.base / "startup.log"
        with open(startup, "w") as output:
            proc = subprocess.run(["dovecot", "-c", str(self.conf)], stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=output, timeout=30)
        if proc.returncode != 0:
            raise RuntimeError(f"dovecot failed to start ({proc.returncode}): {startup.read_text()}")
        return self

    def authenticates(self, address, password):
        """doveadm auth test: True if Dovecot's passdb accepts the password."""
        proc = subprocess.run(["doveadm", "-c", str(self.conf), "auth", "test", address, password],
                              capture_output=True, text=True, timeout=30)
        return proc.returncode == 0 and "auth succeeded" in proc.stdout

    def stop(self):
        if (self.base / "run" / "master.pid").exists():
            run(["doveadm", "-c", str(self.conf), "stop"], check=False)
