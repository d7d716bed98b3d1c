"""postfixadmin states: test=True predicts, a second run changes nothing, secrets stay hidden."""

from .helpers import LOOKUP, run_sql

PASSWORD = "Corr3ct-H0rse-Battery"


def test_schema_state(states, pfa, database):
    predicted = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database, test=True)
    assert predicted.result is None
    assert "table mailbox" in predicted.changes["created"]["new"]
    assert predicted.changes["version"] == {"old": None, "new": 1847}
    assert pfa.schema_pending(database=database)["created"]  # still nothing there

    applied = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database)
    assert (applied.result, applied.changes) == (True, predicted.changes)
    again = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database)
    assert (again.result, again.changes) == (True, {})


def test_quota_usage_table_state(states, database):
    kwargs = dict(name="quota_usage", lookup_user=LOOKUP, database=database)
    predicted = states.postfixadmin.quota_usage_table(test=True, **kwargs)
    assert predicted.result is None
    assert predicted.changes == {"created": "table quota_usage", "granted": f"SELECT ON quota_usage TO {LOOKUP}"}
    assert run_sql(database, "SELECT to_regclass('quota_usage')") == [(None,)]

    applied = states.postfixadmin.quota_usage_table(**kwargs)
    assert (applied.result, applied.changes) == (True, predicted.changes)
    again = states.postfixadmin.quota_usage_table(**kwargs)
    assert (again.result, again.changes) == (True, {})
    assert database["password"] not in str(applied.raw)


def test_domain_state(states, pfa, schema):
    kwargs = dict(name="example.test", description="Example", backupmx=True, database=schema)
    predicted = states.postfixadmin.domain_present(test=True, **kwargs)
    assert predicted.result is None and pfa.domain_get("example.test", database=schema) is None

    applied = states.postfixadmin.domain_present(**kwargs)
    assert applied.result is True
    assert applied.changes == predicted.changes == {
        "domain": {"old": None, "new": "example.test"},
        "description": {"old": None, "new": "Example"},
        "backupmx": {"old": None, "new": True},
    }
    assert states.postfixadmin.domain_present(**kwargs).changes == {}

    changed = states.postfixadmin.domain_present(**{**kwargs, "backupmx": False})
    assert changed.changes == {"backupmx": {"old": True, "new": False}}

    bad = states.postfixadmin.domain_present(**{**kwargs, "quota": -5})
    assert bad.result is False and "quota must be an integer" in bad.comment

    predicted_gone = states.postfixadmin.domain_absent(name="example.test", database=schema, test=True)
    assert predicted_gone.result is None and pfa.domain_get("example.test", database=schema) is not None
    gone = states.postfixadmin.domain_absent(name="example.test", database=schema)
    assert gone.changes == predicted_gone.changes == {"domain": {"old": "example.test", "new": None}}
    assert pfa.domain_get("example.test", database=schema) is None
    again = states.postfixadmin.domain_absent(name="example.test", database=schema)
    assert (again.result, again.changes) == (True, {})


def test_mailbox_state_never_shows_the_password(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    kwargs = dict(name="alice@example.test", password=PASSWORD, full_name="Alice", quota=1024, database=schema)

    predicted = states.postfixadmin.mailbox_present(test=True, **kwargs)
    assert predicted.result is None and pfa.mailbox_get("alice@example.test", database=schema) is None
    applied = states.postfixadmin.mailbox_present(**kwargs)
    assert applied.result is True
    assert applied.changes["password"] == {"old": None, "new": "********"}
    assert applied.changes["full_name"] == {"old": None, "new": "Alice"}
    assert pfa.mailbox_check_password("alice@example.test", PASSWORD, database=schema)

    again = states.postfixadmin.mailbox_present(**kwargs)
    assert (again.result, again.changes) == (True, {})

    new_password = states.postfixadmin.mailbox_present(**{**kwargs, "password": "An0ther-Secret"})
    assert new_password.changes == {"password": {"old": "********", "new": "********"}}
    assert pfa.mailbox_check_password("alice@example.test", "An0ther-Secret", database=schema)

    renamed = states.postfixadmin.mailbox_present(**{**kwargs, "password": "An0ther-Secret", "full_name": "Alice L."})
    assert renamed.changes == {"full_name": {"old": "Alice", "new": "Alice L."}}
    assert pfa.mailbox_get("alice@example.test", database=schema)["full_name"] == "Alice L."

    for ret in (predicted, applied, again, new_password, renamed):
        assert PASSWORD not in str(ret.raw) and "An0ther-Secret" not in str(ret.raw)
        assert "$6$" not in str(ret.raw)


def test_mailbox_state_needs_a_password_to_create(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    ret = states.postfixadmin.mailbox_present(name="alice@example.test", database=schema)
    assert ret.result is False and "password is required" in ret.comment


def test_alias_state(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    kwargs = dict(name="info@example.test", goto=["a@example.test", "b@example.test"], database=schema)
    assert states.postfixadmin.alias_present(test=True, **kwargs).result is None
    assert pfa.alias_get("info@example.test", database=schema) is None
    assert states.postfixadmin.alias_present(**kwargs).changes["goto"] == {"old": None, "new": ["a@example.test", "b@example.test"]}
    reordered = states.postfixadmin.alias_present(**{**kwargs, "goto": ["b@example.test", "a@example.test"]})
    assert (reordered.result, reordered.changes) == (True, {})
    off = states.postfixadmin.alias_present(active=False, **kwargs)
    assert off.changes == {"active": {"old": True, "new": False}}
    assert states.postfixadmin.alias_absent(name="info@example.test", database=schema).result is True
    assert pfa.alias_get("info@example.test", database=schema) is None


def test_backup_synced_state(states, pfa, schema, other_database):
    pfa.domain_add("one.test", database=schema)
    pfa.mailbox_add("alice@one.test", PASSWORD, database=schema)
    pfa.schema_init(database=other_database)

    predicted = states.postfixadmin.backup_synced(name="backup", source=schema, target=other_database, test=True)
    assert predicted.result is None
    assert predicted.changes == {
        "domains": {"added": ["one.test"]},
        "aliases": {"added": ["alice@one.test"]},
        "mailboxes": {"added": ["alice@one.test"]},
    }
    assert pfa.domain_list(database=other_database) == []

    applied = states.postfixadmin.backup_synced(name="backup", source=schema, target=other_database)
    assert (applied.result, applied.changes) == (True, predicted.changes)
    again = states.postfixadmin.backup_synced(name="backup", source=schema, target=other_database)
    assert (again.result, again.changes) == (True, {})
    for ret in (predicted, applied, again):
        assert schema["password"] not in str(ret.raw) and other_database["password"] not in str(ret.raw)


def test_test_mode_predicts_on_a_database_without_the_schema(states, pfa, database, other_database):
    """A first state.apply test=True: schema, domain, mailbox, alias and backup sync all predict."""
    pfa.schema_init(database=other_database)
    pfa.domain_add("primary.test", database=other_database)
    rets = {
        "schema": states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database, test=True),
        "domain": states.postfixadmin.domain_present(name="example.test", description="Ex", database=database, test=True),
        "mailbox": states.postfixadmin.mailbox_present(
            name="alice@example.test", password=PASSWORD, full_name="Alice", database=database, test=True
        ),
        "alias": states.postfixadmin.alias_present(
            name="info@example.test", goto=["alice@example.test"], database=database, test=True
        ),
        "backup": states.postfixadmin.backup_synced(name="backup", source=other_database, target=database, test=True),
    }
    assert {kind: (ret.result, ret.comment) for kind, ret in rets.items()} == {
        "schema": (None, "the postfixadmin schema would be completed"),
        "domain": (None, "domain example.test would be created"),
        "mailbox": (None, "mailbox alice@example.test would be created"),
        "alias": (None, "alias info@example.test would be created"),
        "backup": (None, "the backup database would be synced with the primary"),
    }
    assert rets["mailbox"].changes["full_name"] == {"old": None, "new": "Alice"}
    assert rets["backup"].changes == {"domains": {"added": ["primary.test"]}}
    assert PASSWORD not in str(rets["mailbox"].raw)

    gone = states.postfixadmin.domain_absent(name="example.test", database=database, test=True)
    assert (gone.result, gone.changes, gone.comment) == (True, {}, "domain example.test is already absent")
    assert pfa.schema_pending(database=database)["version"] == 1847  # still nothing there


def test_mailbox_absent_and_a_self_alias_is_no_alias_to_remove(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    pfa.mailbox_add("alice@example.test", PASSWORD, database=schema)
    refused = states.postfixadmin.alias_absent(name="alice@example.test", database=schema)
    assert refused.result is False and "is a mailbox: delete the mailbox instead" in refused.comment
    gone = states.postfixadmin.mailbox_absent(name="alice@example.test", database=schema)
    assert gone.changes == {"username": {"old": "alice@example.test", "new": None}}
    assert pfa.mailbox_get("alice@example.test", database=schema) is None
    assert pfa.alias_get("alice@example.test", database=schema) is None


def test_mailbox_state_hashes_in_the_chosen_format_and_keeps_a_matching_hash(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    kwargs = dict(name="bob@example.test", password=PASSWORD, database=schema)
    assert states.postfixadmin.mailbox_present(encrypt="md5crypt", **kwargs).result is True
    stored = run_sql(schema, "SELECT password FROM mailbox WHERE username = 'bob@example.test'")[0][0]
    assert stored.startswith("$1$")
    # Another format chosen later: the stored hash still matches, nothing to change.
    again = states.postfixadmin.mailbox_present(encrypt="dovecot:SHA512-CRYPT", **kwargs)
    assert (again.result, again.changes) == (True, {})
    bad = states.postfixadmin.mailbox_present(encrypt="md5", **{**kwargs, "password": "Other-pw1"})
    assert bad.result is False and "unsupported encrypt 'md5'" in bad.comment
    assert run_sql(schema, "SELECT password FROM mailbox WHERE username = 'bob@example.test'")[0][0] == stored
