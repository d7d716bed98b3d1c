"""postfixadmin states: test=True predicts, a second run changes nothing, secrets stay hidden."""

from .helpers import LOOKUP

PASSWORD = "Corr3ct-H0rse-Battery"


def test_schema_state(states, pfa, database):
    predicted = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database, test=True)
    assert predicted.result is None
    assert predicted.changes["created"]["new"] == ["domain", "alias", "mailbox", "alias_domain"]
    assert pfa.schema_pending(database=database)["created"]  # still nothing there

    applied = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database)
    assert (applied.result, applied.changes) == (True, predicted.changes)
    again = states.postfixadmin.schema(name="schema", lookup_user=LOOKUP, database=database)
    assert (again.result, again.changes) == (True, {})


def test_domain_state(states, pfa, schema):
    kwargs = dict(name="example.test", description="Example", backupmx=True, database=schema)
    predicted = states.postfixadmin.domain(test=True, **kwargs)
    assert predicted.result is None and pfa.domain_get("example.test", database=schema) is None

    applied = states.postfixadmin.domain(**kwargs)
    assert applied.result is True
    assert applied.changes == predicted.changes == {
        "domain": {"old": None, "new": "example.test"},
        "description": {"old": None, "new": "Example"},
        "backupmx": {"old": None, "new": True},
    }
    assert states.postfixadmin.domain(**kwargs).changes == {}

    changed = states.postfixadmin.domain(**{**kwargs, "backupmx": False})
    assert changed.changes == {"backupmx": {"old": True, "new": False}}

    bad = states.postfixadmin.domain(**{**kwargs, "quota": -5})
    assert bad.result is False and "quota must be an integer" in bad.comment

    gone = states.postfixadmin.domain(name="example.test", ensure="absent", database=schema)
    assert gone.changes == {"example.test": {"old": "present", "new": None}}
    assert pfa.domain_get("example.test", database=schema) is None
    assert states.postfixadmin.domain(name="example.test", ensure="absent", database=schema).changes == {}


def test_mailbox_state_never_shows_the_password(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    kwargs = dict(name="alice@example.test", password=PASSWORD, full_name="Alice", quota=1024, database=schema)

    predicted = states.postfixadmin.mailbox(test=True, **kwargs)
    assert predicted.result is None and pfa.mailbox_get("alice@example.test", database=schema) is None
    applied = states.postfixadmin.mailbox(**kwargs)
    assert applied.result is True
    assert applied.changes["password"] == {"old": None, "new": "********"}
    assert applied.changes["full_name"] == {"old": None, "new": "Alice"}
    assert pfa.mailbox_check_password("alice@example.test", PASSWORD, database=schema)

    again = states.postfixadmin.mailbox(**kwargs)
    assert (again.result, again.changes) == (True, {})

    new_password = states.postfixadmin.mailbox(**{**kwargs, "password": "An0ther-Secret"})
    assert new_password.changes == {"password": {"old": "********", "new": "********"}}
    assert pfa.mailbox_check_password("alice@example.test", "An0ther-Secret", database=schema)

    renamed = states.postfixadmin.mailbox(**{**kwargs, "password": "An0ther-Secret", "full_name": "Alice L."})
    assert renamed.changes == {"full_name": {"old": "Alice", "new": "Alice L."}}
    assert pfa.mailbox_get("alice@example.test", database=schema)["full_name"] == "Alice L."

    for ret in (predicted, applied, again, new_password, renamed):
        assert PASSWORD not in str(ret.raw) and "An0ther-Secret" not in str(ret.raw)
        assert "$6$" not in str(ret.raw)


def test_mailbox_state_needs_a_password_to_create(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    ret = states.postfixadmin.mailbox(name="alice@example.test", database=schema)
    assert ret.result is False and "password is required" in ret.comment


def test_alias_state(states, pfa, schema):
    pfa.domain_add("example.test", database=schema)
    kwargs = dict(name="info@example.test", goto=["a@example.test", "b@example.test"], database=schema)
    assert states.postfixadmin.alias(test=True, **kwargs).result is None
    assert pfa.alias_get("info@example.test", database=schema) is None
    assert states.postfixadmin.alias(**kwargs).changes["goto"] == {"old": None, "new": ["a@example.test", "b@example.test"]}
    reordered = states.postfixadmin.alias(**{**kwargs, "goto": ["b@example.test", "a@example.test"]})
    assert (reordered.result, reordered.changes) == (True, {})
    off = states.postfixadmin.alias(active=False, **kwargs)
    assert off.changes == {"active": {"old": True, "new": False}}
    assert states.postfixadmin.alias(name="info@example.test", ensure="absent", database=schema).result is True
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
        "domain": states.postfixadmin.domain(name="example.test", description="Ex", database=database, test=True),
        "mailbox": states.postfixadmin.mailbox(
            name="alice@example.test", password=PASSWORD, full_name="Alice", database=database, test=True
        ),
        "alias": states.postfixadmin.alias(
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

    gone = states.postfixadmin.domain(name="example.test", ensure="absent", database=database, test=True)
    assert (gone.result, gone.changes, gone.comment) == (True, {}, "domain example.test is already absent")
    assert pfa.schema_pending(database=database)["created"] == ["domain", "alias", "mailbox", "alias_domain"]
