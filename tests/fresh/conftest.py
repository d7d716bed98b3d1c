"""Bare Debian 12 hosts (tests/harness/fresh_host.py) the formula is applied
to from scratch, each with its own database in the suite's cluster.

The image is built by scripts/test before pytest starts (it needs the
network, which the suite's namespace has not)."""

import itertools
import shutil

import pytest

from tests.fresh.mail import PILLAR_EXAMPLE
from tests.harness.fresh_host import FreshHost, cached_image, pillar_layer
from tests.harness.sandbox_pillar import create_database

#: namespace addresses no session-wide fixture holds (the e2e site has its own, netns.E2E_ADDRESSES)
ADDRESSES = ("127.0.0.37", "127.0.0.38")
_counter = itertools.count(1)


def assert_no_failures(result):
    """No state failed; else name the failures, those that failed only
    because another did summed up, so the causes show."""
    failed = {value["__id__"]: value["comment"] for value in result.values() if value["result"] is False}
    causes = {key: comment for key, comment in failed.items() if not comment.startswith("One or more requisite")}
    assert not failed, (f"{len(failed)} states failed, {len(failed) - len(causes)} for a failed requisite; "
                        f"the others:\n" + "\n".join(f"{key}: {comment}" for key, comment in causes.items()))


class Site:
    """A fresh host with its database and pillar.example adapted to it."""

    def __init__(self, host, database, lookup_user):
        self.host = host
        self.database = database
        self.lookup_user = lookup_user

    def apply(self, test=False):
        self.host.set_pillar(PILLAR_EXAMPLE, pillar_layer(self.host, self.database, self.lookup_user))
        return self.host.apply("postfix", test=test)

    def apply_ok(self, test=False):
        """Apply and insist every state succeeded; returns the whole result."""
        rc, result = self.apply(test=test)
        assert isinstance(result, dict), f"salt-call failed (exit {rc}): {str(result)[:3000]}"
        assert_no_failures(result)
        assert rc == 0, f"salt-call exit {rc}"
        return result


@pytest.fixture(scope="session")
def fresh_image():
    return cached_image()


@pytest.fixture(scope="module")
def make_site(fresh_image, sandbox_base, pg):
    """Make fresh hosts (started, formula synced) with a database each; all stopped afterwards."""
    made = []

    def make(address, hostname="mx1.example.com"):
        number = next(_counter)
        host = FreshHost(fresh_image, sandbox_base / f"fresh-{number}", address, hostname)
        made.append(host)
        host.start()
        rc, output = host.salt_call("saltutil.sync_all")
        assert rc == 0, f"saltutil.sync_all failed: {output}"
        database, lookup_user = create_database(pg, f"fresh{number}")
        return Site(host, database, lookup_user)

    yield make
    for host in made:
        host.stop()
        shutil.rmtree(host.base, ignore_errors=True)

