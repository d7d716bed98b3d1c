"""Debian's postfixadmin package (its own PHP code) run under php-cli, on a
test database, with a configuration of the test's own.

postfixadmin reads config.inc.php from the directory its common.php is in
(PHP resolves symlinks, so a symlinked tree still finds /etc/postfixadmin),
and that file loads config.local.php from its own directory. So the test
copies postfixadmin's code tree into its scratch directory, puts Debian's
config.inc.php there unchanged, and writes dbconfig.inc.php and
config.local.php beside it: /etc/postfixadmin is never touched, and each
test's settings (database, encrypt) are its own.
"""

import json
import pathlib
import shutil
import subprocess

CODE = pathlib.Path("/usr/share/postfixadmin")
DEBIAN_CONFIG = pathlib.Path("/etc/postfixadmin/config.inc.php")


def _php_string(value):
    # json.dumps gives a double-quoted string; PHP would expand $ in it.
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class PostfixadminCode:
    """postfixadmin's code in BASE configured for DATABASE (a connection dict) and
    ``$CONF['encrypt'] = ENCRYPT``; DNS checks of domains off (no DNS here)."""

    def __init__(self, base, database, encrypt="md5crypt", settings=None):
        self.base = pathlib.Path(base)
        self.database = database
        self.encrypt = encrypt
        self.settings = settings or {}

    def install(self):
        if self.base.exists():
            shutil.rmtree(self.base)
        shutil.copytree(CODE, self.base, symlinks=True)
        (self.base / "config.local.php").unlink()
        (self.base / "config.inc.php").unlink()
        shutil.copy(DEBIAN_CONFIG, self.base / "config.inc.php")
        db = self.database
        (self.base / "dbconfig.inc.php").write_text(
            "<?php\n"
            f"$dbtype = 'pgsql';\n$dbserver = {_php_string(db['host'])};\n$dbport = {_php_string(db['port'])};\n"
            f"$dbname = {_php_string(db['dbname'])};\n$dbuser = {_php_string(db['user'])};\n"
            f"$dbpass = {_php_string(db['password'])};\n"
        )
        settings = {
            "database_port": str(db["port"]),
            "encrypt": self.encrypt,
            "emailcheck_resolve_domain": "NO",
            **self.settings,
        }
        (self.base / "config.local.php").write_text(
            "<?php\n" + "".join(f"$CONF[{_php_string(k)}] = {_php_string(v)};\n" for k, v in settings.items())
        )
        return self

    def _php(self, argv):
        proc = subprocess.run(["php", *map(str, argv)], capture_output=True, text=True, cwd=self.base, timeout=60)
        return proc

    def upgrade(self):
        """postfixadmin's public/upgrade.php (what its setup.php runs); returns its output."""
        proc = self._php([self.base / "public" / "upgrade.php"])
        if proc.returncode != 0 or "Uncaught" in proc.stdout + proc.stderr:
            raise RuntimeError(f"upgrade.php failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc.stdout

    def cli(self, *args, check=True):
        """postfixadmin-cli MODULE TASK ...; returns (exit status, output)."""
        proc = self._php([self.base / "scripts" / "postfixadmin-cli.php", *args])
        output = proc.stdout + proc.stderr
        if check and (proc.returncode != 0 or "Error" in output):
            raise RuntimeError(f"postfixadmin-cli {' '.join(args)} failed ({proc.returncode}): {output}")
        return proc.returncode, output

    def call(self, code):
        """Run PHP CODE with postfixadmin loaded as its CLI loads it; CODE sets $result,
        returned decoded from JSON."""
        script = self.base / "test-call.php"
        script.write_text(
            "<?php\ndefine('POSTFIXADMIN_CLI', 1);\n"
            f"require_once({_php_string(self.base / 'common.php')});\n"
            f"{code}\necho json_encode($result);\n"
        )
        proc = self._php([script])
        if proc.returncode != 0:
            raise RuntimeError(f"php failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def login(self, address, password):
        """postfixadmin's own mailbox login check (Login::login, pacrypt with its encrypt)."""
        return self.call(f"$result = (new Login('mailbox'))->login({_php_string(address)}, {_php_string(password)});")

    def listing(self, kind, domain=None):
        """postfixadmin's own list of domains or mailboxes (its handlers' getList), as the web UI
        lists them: {name: row}."""
        handler = {"domain": "DomainHandler", "mailbox": "MailboxHandler"}[kind]
        condition = "''" if domain is None else f"array('domain' => {_php_string(domain)})"
        return self.call(
            f"$h = new {handler}(0, '', 1); $h->getList({condition}); $result = $h->result();"
        )
