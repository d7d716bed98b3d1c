"""__virtual__ says why the module is unavailable (pure logic: no database needed)."""

import importlib.util

from .helpers import REPO


def load_module():
    spec = importlib.util.spec_from_file_location("postfixadmin_under_test", REPO / "_modules" / "postfixadmin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_virtual_names_psycopg_when_it_is_missing(monkeypatch):
    module = load_module()
    assert module.__virtual__() == "postfixadmin"
    monkeypatch.setattr(module, "HAS_PSYCOPG", False)
    available, reason = module.__virtual__()
    assert available is False and "psycopg 3 is not installed" in reason
