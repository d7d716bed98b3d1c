"""postfix.quota (R3) on Debian's stock Postfix, which has no VDA patch:
`auto` brings in Dovecot's quota, `vda` is refused naming the pillar key,
and Postfix's policy service must be where Dovecot's quota-status listens."""

import json

import pytest


@pytest.fixture(scope="module")
def site(make_dovecot_site):
    return make_dovecot_site(None, "127.0.0.33")


#: a database that is never reached (show_sls only renders; the vda check runs before anything)
UNUSED = {"host": "127.0.0.1", "port": 5432, "dbname": "never-created", "user": "nobody"}


def show_sls(site, **overrides):
    site.minion.set_pillar(site.pillar(**{"database": UNUSED, **overrides}))
    return site.minion.salt_call("state.show_sls", "postfix.quota")


@pytest.mark.parametrize("backend", ["auto", "dovecot"])
def test_stock_postfix_gets_dovecot_quota(site, backend):
    rc, states, _ = show_sls(site, quota={"enabled": True, "backend": backend})
    assert rc == 0, states
    assert "postfix-dovecot-service-running" in states
    assert "postfix-quota_status-table-quota_check" in states
    assert "postfix-package-vda-patch-present" not in states


def test_vda_on_stock_postfix_is_refused(site):
    # the check runs before anything else: the database is never reached
    rc, result = site.apply("postfix.quota", quota={"enabled": True, "backend": "vda"}, database=UNUSED)
    assert rc != 0
    assert "quota:backend" in json.dumps(result) and "VDA" in json.dumps(result)
    assert not site.dovecot_dir.exists()


def test_policy_service_must_reach_quota_status(site):
    rc, states, _ = show_sls(site, quota={"enabled": True, "backend": "dovecot",
                                          "policy_service": "inet:127.0.0.1:9999"})
    assert rc != 0
    assert "postfix:quota:policy_service (inet:127.0.0.1:9999) must be inet:127.0.0.33:12340" in json.dumps(states)
