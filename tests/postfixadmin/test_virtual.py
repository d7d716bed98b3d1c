"""postfixadmin.* is several files Salt's loader merges; each says why it is unavailable
(pure logic: no database needed)."""

import sys

from tests.harness import salt_modules

FILES = ("postfixadmin", "postfixadmin_replication", "postfixadmin_schema")


def test_postfixadmin_is_the_records_schema_and_replication_files():
    assert tuple(salt_modules.files_of("modules", "postfixadmin")) == FILES


def test_every_file_names_psycopg_when_it_is_missing(monkeypatch):
    modules = [salt_modules.load("modules", name) for name in FILES]
    assert [module.__virtual__() for module in modules] == ["postfixadmin"] * len(FILES)
    monkeypatch.setattr(sys.modules["_postfixadmin_db"], "HAS_PSYCOPG", False)
    for module in modules:
        available, reason = module.__virtual__()
        assert available is False and "psycopg 3 is not installed" in reason


def test_each_function_is_defined_once_across_the_files():
    merged = salt_modules.load_virtual("modules", "postfixadmin")
    assert {"schema_init", "domain_add", "mailbox_check_password", "sync_backup", "subscription_present",
            "lookup"} <= set(vars(merged))


def test_a_new_loader_runs_the_helpers_synced_since(minion_opts, tmp_path):
    """A minion's module refresh after saltutil.sync_modules: the private helpers the files
    import are not loader modules, yet the new code is what runs."""
    import shutil

    import salt.loader

    modules_dir = tmp_path / "modules"
    shutil.copytree(salt_modules.REPO / "_modules", modules_dir)
    opts = {**minion_opts, "module_dirs": [str(tmp_path)]}

    def refusal():
        functions = salt.loader.minion_mods(opts)
        try:
            functions["postfixadmin.validate"]("domain", aliases="many")
        except Exception as exc:  # noqa: BLE001 - the message is what is compared
            return str(exc)
        raise AssertionError("validate accepted aliases='many'")

    assert refusal().startswith("aliases must be an integer")
    helpers = modules_dir / "_postfixadmin_fields.py"
    helpers.write_text(helpers.read_text().replace("must be an integer from", "must be a whole number from"))
    assert refusal().startswith("aliases must be a whole number")
