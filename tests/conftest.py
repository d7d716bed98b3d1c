"""The sandbox every test runs in.

At start-up the test process moves into a loopback-only network namespace
of its own (tests/harness/netns.py); everything the tests start inherits it.
Fixtures give a throwaway PostgreSQL cluster, sandboxed Postfix instances
that never touch /etc/postfix, and Salt loaders with this repository's
_modules/ and _states/.
"""

import itertools
import os
import pathlib
import shutil

import pytest

from tests.harness.netns import ADDRESSES, Namespace
from tests.harness.pgcluster import PgCluster
from tests.harness.postfix_instance import PostfixInstance
from tests.harness.procs import stop_leftovers

REPO = pathlib.Path(__file__).resolve().parent.parent
_NAMESPACE = None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    global _NAMESPACE
    if os.geteuid() != 0:
        raise pytest.UsageError("the test suite runs as root: it creates network namespaces and starts daemons")
    if _NAMESPACE is None and not hasattr(config, "workerinput"):
        _NAMESPACE = Namespace().create().enter()


def pytest_unconfigure(config):
    global _NAMESPACE
    _drop_salt_deferred_log_records()
    if _NAMESPACE is not None:
        _NAMESPACE.delete()
        _NAMESPACE = None


def _drop_salt_deferred_log_records():
    """Salt buffers early log records and prints them at exit to a stream
    pytest has closed by then ("--- Logging error ---"); hand them over now."""
    try:
        from salt._logging.impl import shutdown_temp_handler
    except ImportError:
        return
    shutdown_temp_handler()


@pytest.fixture(scope="session")
def netns():
    return _NAMESPACE


@pytest.fixture(scope="session")
def sandbox_base():
    """A world-traversable scratch directory (daemon users must reach it).
    Scratch directories of runs that died are cleared first, daemons included."""
    for stale in pathlib.Path("/var/tmp").glob("pfxt-*"):
        pid = stale.name.removeprefix("pfxt-")
        if pid.isdigit() and not pathlib.Path(f"/proc/{pid}").exists():
            stop_leftovers(stale)
            shutil.rmtree(stale, ignore_errors=True)
    base = pathlib.Path(f"/var/tmp/pfxt-{os.getpid()}")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(mode=0o755, parents=True)
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(sandbox_base):
    """A running PostgreSQL cluster on 127.0.0.1:5432 inside the namespace."""
    cluster = PgCluster(sandbox_base / "pg").start()
    yield cluster
    cluster.stop()


_address_pool = itertools.cycle(ADDRESSES[:30])
_instance_counter = itertools.count(1)


@pytest.fixture
def postfix_factory(sandbox_base):
    """Make sandboxed Postfix instances (created, not started); all stopped afterwards."""
    made = []

    def make(hostname="mx1.example.test", address=None):
        base = sandbox_base / f"postfix-{next(_instance_counter)}"
        instance = PostfixInstance(base, address=address or next(_address_pool), hostname=hostname).create()
        made.append(instance)
        return instance

    yield make
    for instance in made:
        instance.stop()
        shutil.rmtree(instance.base, ignore_errors=True)


@pytest.fixture
def postfix_sandbox(postfix_factory):
    """One sandboxed Postfix instance, created but not started."""
    return postfix_factory()


# --- Salt -----------------------------------------------------------------


@pytest.fixture(scope="session")
def salt_factories_config(sandbox_base):
    return {"root_dir": sandbox_base / "salt"}


@pytest.fixture(scope="session")
def minion_opts(salt_factories):
    """Minion options for in-process tests: module_dirs loads _modules/ and
    _states/; no file root, or Loaders would sync the whole checkout."""
    factory = salt_factories.salt_minion_daemon(
        "pfx-functional",
        defaults={
            "file_client": "local",
            "module_dirs": [str(REPO)],
            "file_roots": {"base": []},
            "pillar_roots": {"base": []},
        },
    )
    return factory.config.copy()


@pytest.fixture(scope="session")
def session_loaders(minion_opts):
    from saltfactories.utils.functional import Loaders

    return Loaders(minion_opts)


@pytest.fixture
def loaders(session_loaders):
    """Salt's loaders, built once per session (seconds each) and reset after every test."""
    yield session_loaders
    session_loaders.reset_state()


@pytest.fixture
def modules(loaders):
    return loaders.modules


@pytest.fixture
def states(loaders):
    return loaders.states


@pytest.fixture
def masterless(sandbox_base, request):
    """A masterless salt-call runner with its own config, cache and pillar dirs."""
    from tests.harness.masterless import Masterless

    base = sandbox_base / f"salt-{request.node.name[:40]}-{next(_instance_counter)}"
    return Masterless(base).write_config()
