"""postfixadmin states on a database other writers share (the other mail hosts applying the
same pillar at the same time, postfixadmin's web UI): a row added between a state's read
and its insert is compared with, not refused. Pure logic, with the module calls faked:
the fleet tests race for real (tests/fleet/test_all_at_once.py)."""

import pytest
from salt.exceptions import CommandExecutionError

from tests.harness import salt_modules


class SharedDatabase:
    """The postfixadmin module functions the mailbox state calls, over one dict of rows;
    another host adds the mailbox right after the state's first read."""

    def __init__(self, refusal):
        self.rows, self.reads, self.refusal = {}, 0, refusal

    def get(self, name, database=None):
        self.reads += 1
        row = self.rows.get(name)
        if self.reads == 1:
            self.rows[name] = {"username": name, "full_name": "Alice", "quota": 0, "active": True}
        return row

    def add(self, name, password, encrypt=None, database=None, **fields):
        if name in self.rows:
            raise CommandExecutionError(self.refusal.format(name=name))
        self.rows[name] = {"username": name, **fields}

    def functions(self):
        return {
            "postfixadmin.validate": lambda kind, **fields: fields,
            "postfixadmin.mailbox_get": self.get,
            "postfixadmin.mailbox_add": self.add,
            "postfixadmin.mailbox_check_password": lambda name, password, database=None: True,
        }


@pytest.mark.parametrize("refusal", [
    "mailbox {name} already exists",  # the add's own check saw the other host's row
    "postfixadmin database u@h:5432/p: duplicate key value violates unique constraint \"mailbox_pkey\"",  # both inserted
])
def test_a_mailbox_another_host_added_meanwhile_is_compared_not_refused(refusal):
    states = salt_modules.load("states", "postfixadmin")
    shared = SharedDatabase(refusal)
    states.__salt__, states.__opts__ = shared.functions(), {"test": False}
    ret = states.mailbox_present("alice@example.com", password="pw", full_name="Alice")
    assert (ret["result"], ret["changes"]) == (True, {}), ret["comment"]
    assert shared.reads == 2, "read again after the add lost the race"


def test_any_other_failure_is_not_retried():
    states = salt_modules.load("states", "postfixadmin")
    adds = []

    def add_refused(name, password, encrypt=None, database=None, **fields):
        adds.append(name)
        raise CommandExecutionError("postfixadmin database u@h:5432/p: permission denied for table mailbox")

    states.__salt__ = {**SharedDatabase("").functions(), "postfixadmin.mailbox_get": lambda name, database=None: None,
                       "postfixadmin.mailbox_add": add_refused}
    states.__opts__ = {"test": False}
    ret = states.mailbox_present("alice@example.com", password="pw", full_name="Alice")
    assert ret["result"] is False and "permission denied" in ret["comment"]
    assert adds == ["alice@example.com"]
