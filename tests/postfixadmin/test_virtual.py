"""__virtual__ says why the module is unavailable (pure logic: no database needed)."""

from .helpers import load_module


def test_virtual_names_psycopg_when_it_is_missing(monkeypatch):
    module = load_module()
    assert module.__virtual__() == "postfixadmin"
    monkeypatch.setattr(module, "HAS_PSYCOPG", False)
    available, reason = module.__virtual__()
    assert available is False and "psycopg 3 is not installed" in reason
