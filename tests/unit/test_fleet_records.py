"""postfix_fleet: fleet records validated, and the MX and A records made of
them (the DNS side is proven with dnsmasq in tests/fleet)."""

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

from tests.harness import salt_modules

fleet = salt_modules.load("modules", "postfix_fleet")


def _members():
    return {
        "mx1": fleet.member("primary", "192.0.2.1", "mx1.example.com", mx_name="mx.example.com",
                            domains=["example.com", "Example.ORG."]),
        "mx2": fleet.member("primary", "192.0.2.2", "mx2.example.com", mx_name="mx.example.com",
                            domains=["example.com"]),
        "mxb": fleet.member("backup", "192.0.2.9", "backup.example.com"),
        "db1": fleet.member("database", "192.0.2.20", "db1.example.com"),
    }


def test_member_defaults_priority_by_role_and_names_to_the_hostname():
    record = fleet.member("backup", "192.0.2.9", "Backup.Example.com.")
    assert record == {"role": "backup", "address": "192.0.2.9", "hostname": "backup.example.com",
                      "mx_priority": 20, "mx_name": "backup.example.com", "domains": []}
    assert fleet.member("primary", "192.0.2.1", "mx1.example.com")["mx_priority"] == 10


@pytest.mark.parametrize("field, value", [
    ("role", "relay"), ("address", "mx1.example.com"), ("address", "2001:db8::1"), ("hostname", "mx1"),
    ("mx_priority", -1), ("mx_priority", "10"), ("mx_priority", True), ("domains", "example.com"),
    ("domains", ["bad domain"]), ("mx_name", "-x.example.com"),
])
def test_member_refuses_a_bad_value_naming_it(field, value):
    fields = {"role": "primary", "address": "192.0.2.1", "hostname": "mx1.example.com", field: value}
    with pytest.raises(SaltInvocationError, match=field):
        fleet.member(**fields)


def test_records_mx_per_domain_and_round_robin_a_for_a_shared_name():
    zone = fleet.records(_members())
    assert zone["mx"] == {
        "example.com": [[10, "mx.example.com"], [20, "backup.example.com"]],
        "example.org": [[10, "mx.example.com"], [20, "backup.example.com"]],
    }
    assert zone["a"]["mx.example.com"] == ["192.0.2.1", "192.0.2.2"]
    assert zone["a"]["backup.example.com"] == ["192.0.2.9"]
    assert "db1.example.com" not in zone["a"]


def test_records_of_named_domains_only():
    assert list(fleet.records(_members(), domains=["example.org"])["mx"]) == ["example.org"]


def test_records_refuse_an_empty_set_of_primaries():
    members = {name: record for name, record in _members().items() if record["role"] != "primary"}
    with pytest.raises(CommandExecutionError, match="no primary MX"):
        fleet.records(members)
    with pytest.raises(CommandExecutionError, match="no primary MX"):
        fleet.records({})
    with pytest.raises(CommandExecutionError, match="other.test"):
        fleet.records(_members(), domains=["other.test"])


def test_zone_text_in_both_backends_syntax():
    zone = fleet.records(_members(), domains=["example.com"])
    dnsmasq = fleet.zone_text(zone, "dnsmasq").splitlines()
    assert "mx-host=example.com,mx.example.com,10" in dnsmasq
    assert dnsmasq.count("host-record=mx.example.com,192.0.2.1") == 1
    unbound = fleet.zone_text(zone, "unbound").splitlines()
    assert unbound[1] == "server:"
    assert '  local-data: "example.com. 300 IN MX 20 backup.example.com."' in unbound
    with pytest.raises(SaltInvocationError, match="bind"):
        fleet.zone_text(zone, "bind")
