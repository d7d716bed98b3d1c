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
    kwargs = dict(name="alice@example.test", password=PASSWORD, quota=1024, database=schema)

    predicted = states.postfixadmin.mailbox(test=True, **kwargs)
    assert predicted.result is None and pfa.mailbox_get("alice@example.test", database=schema) is None
    applied = states.postfixadmin.mailbox(**kwargs)
    assert applied.result is True
    assert applied.changes["password"] == {"old": None, "new": "********"}
    assert pfa.mailbox_check_password("alice@example.test", PASSWORD, database=schema)

    again = states.postfixadmin.mailbox(**kwargs)
    assert (again.result, again.changes) == (True, {})

    new_password = states.postfixadmin.mailbox(**{**kwargs, "password": "An0ther-Secret"})
    assert new_password.changes == {"password": {"old": "********", "new": "********"}}
    assert pfa.mailbox_check_password("alice@example.test", "An0ther-Secret", database=schema)

    for ret in (predicted, applied, again, new_password):
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
