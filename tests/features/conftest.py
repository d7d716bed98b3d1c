"""Fixtures for the everyday features (TLS, smarthost, maps, aliases, policy
services): the formula sandbox of tests/formula and a throwaway CA."""

import pytest

from tests.features.ca import TestCA
from tests.features.peers import partner_mx  # noqa: F401  (fixture)
from tests.formula.conftest import formula_sandbox, postfixadmin_module  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def test_ca(sandbox_base):
    """A certificate authority made for this test run; its certificate at .cert_path."""
    return TestCA(sandbox_base / "test-ca")
