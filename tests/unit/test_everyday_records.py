"""postfix_records for TLS, relayhost, maps, aliases and policy services: pure logic."""

import pathlib

import pytest
import yaml
from salt.exceptions import SaltInvocationError

from tests.harness import salt_modules

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "postfix" / "defaults.yaml").read_text())["postfix"]
records = salt_modules.load("modules", "postfix_records")
PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n"


def settings(**overrides):
    return records.merge(DEFAULTS, {"config_dir": "/etc/postfix"}, overrides)


def main(**overrides):
    # no proxied maps here, so no postconf lookup of proxy_read_maps
    return records.main(settings(**overrides), mem_total=4096)


def test_no_certificate_no_tls_parameters():
    assert not [name for name in main() if "tls" in name]


def test_pem_certificate_gets_paths_auth_only_and_profile():
    params = main(tls={"cert_pem": PEM, "key_pem": KEY})
    assert params["smtpd_tls_cert_file"] == "/etc/postfix/tls/server.crt"
    assert params["smtpd_tls_key_file"] == "/etc/postfix/tls/server.key"
    assert params["smtpd_tls_auth_only"] == "yes"
    assert params["smtpd_tls_protocols"] == params["smtpd_tls_mandatory_protocols"] == ">=TLSv1.2"
    assert main(tls={"cert": "/c", "key": "/k", "auth_only": False})["smtpd_tls_auth_only"] == "no"
    assert main(tls={"cert": "/c", "key": "/k", "profile": "modern"})["smtpd_tls_protocols"] == ">=TLSv1.3"


def test_a_private_key_in_the_world_readable_certificate_is_refused_unshown():
    with pytest.raises(SaltInvocationError) as error:
        main(tls={"cert_pem": PEM + KEY, "key_pem": KEY})
    assert str(error.value).startswith("pillar postfix:tls:cert_pem: holds a private key")
    assert "BBBB" not in str(error.value)


def test_postfix_main_wins_over_tls():
    assert main(tls={"cert": "/c", "key": "/k"}, main={"smtpd_tls_cert_file": "/other"})[
        "smtpd_tls_cert_file"] == "/other"


@pytest.mark.parametrize("tls, key", [
    ({"cert": "/c"}, "tls:key"),
    ({"cert_pem": PEM}, "tls:key_pem"),
    ({"cert_pem": "not pem", "key_pem": KEY}, "tls:cert_pem"),
    ({"cert": "/c", "key": "/k", "profile": "paranoid"}, "tls:profile"),
    ({"outbound": "always"}, "tls:outbound"),
])
def test_bad_tls_pillar_names_the_key(tls, key):
    with pytest.raises(SaltInvocationError, match=f"pillar postfix:{key}"):
        main(tls=tls)


def test_dane_outbound_needs_dnssec():
    params = main(tls={"outbound": "dane"})
    assert (params["smtp_tls_security_level"], params["smtp_dns_support_level"]) == ("dane", "dnssec")


def test_relayhost_with_credentials():
    params = main(relayhost={"host": "[smtp.example.net]:587", "username": "u", "password": "p"})
    assert params["relayhost"] == "[smtp.example.net]:587"
    assert params["smtp_tls_security_level"] == "encrypt"
    assert params["smtp_sasl_password_maps"] == "${default_database_type}:/etc/postfix/maps/relayhost_sasl_passwd"
    maps = records.static_maps(settings(relayhost={"host": "[h]:587", "username": "u", "password": "p"}))
    assert maps["relayhost_sasl_passwd"]["secret"] and maps["relayhost_sasl_passwd"]["mode"] == "0600"


def test_relayhost_password_never_in_the_error():
    with pytest.raises(SaltInvocationError) as error:
        main(relayhost={"host": "[h]:587", "password": "hush-hush"})
    assert "relayhost:username" in str(error.value) and "hush-hush" not in str(error.value)


@pytest.mark.parametrize("relayhost, key", [
    ({"host": "[h]:587", "username": "alice:secret-1", "password": "secret-1"}, "relayhost:username"),
    ({"host": "[h]:587", "username": "user name", "password": "secret-1"}, "relayhost:username"),
    ({"host": "[h]:587 [i]:587", "username": "u", "password": "secret-1"}, "relayhost:host"),
    ({"host": "[h]:587", "username": "u", "password": " secret-1"}, "relayhost:password"),
    ({"host": "[h]:587", "username": "u", "password": "secret-1\t"}, "relayhost:password"),
])
def test_relayhost_credentials_postfix_would_misread_are_refused(relayhost, key):
    """postmap drops a value's surrounding whitespace; Postfix cuts username:password at the first colon
    (a pasted "user:password" in username is not shown either)."""
    with pytest.raises(SaltInvocationError) as error:
        main(relayhost=relayhost)
    assert str(error.value).startswith(f"pillar postfix:{key}: ")
    assert "secret-1" not in str(error.value)
    assert main(relayhost={"host": "[h]:587", "username": "u@example.net", "password": "inner space ok"})


@pytest.mark.parametrize("overrides, key", [
    ({"maps": {"x": {"entries": {"": "OK"}}}}, "maps:x:entries:"),
    ({"maps": {"x": {"entries": {"a b": "OK"}}}}, "maps:x:entries:a b"),
    ({"maps": {"x": {"entries": {"#a": "OK"}}}}, "maps:x:entries:#a"),
    ({"maps": {"x": {"type": "pcre", "entries": {" /a/": "OK"}}}}, "maps:x:entries: /a/"),
    ({"aliases": {"a:b": "root"}}, "aliases:a:b"),
    ({"aliases": {"a b": "root"}}, "aliases:a b"),
])
def test_map_keys_the_table_file_would_misread_are_refused(overrides, key):
    """postmap would take " OK" as the previous line's continuation, "a b" as key a, "#a" as a comment;
    postalias would take "a:b" as alias a."""
    with pytest.raises(SaltInvocationError) as error:
        records.static_maps(settings(**overrides))
    assert str(error.value).startswith(f"pillar postfix:{key}: "), str(error.value)


def test_keys_postmap_reads_as_given_pass():
    maps = records.static_maps(settings(maps={"x": {"type": "cidr", "entries": {"192.0.2.0/24": "OK"}},
                                              "y": {"type": "pcre", "entries": {"/^a b$/": "REJECT"}},
                                              "z": {"entries": {"user@example.com": "OK", "[h]:587": "OK"}}}))
    assert [key for key, _ in maps["y"]["entries"]] == ["/^a b$/"]


@pytest.mark.parametrize("maps", [
    {"sasl": {"secret": True, "entries": [["[h]:587", "u:S3cret-map"]]}},
    {"sasl": ["[h]:587 u:S3cret-map"]},
])
def test_a_malformed_secret_map_is_never_shown(maps):
    with pytest.raises(SaltInvocationError) as error:
        records.static_maps(settings(maps=maps))
    assert str(error.value).startswith("pillar postfix:maps:sasl") and "S3cret-map" not in str(error.value)


def test_map_references_in_main_and_master():
    overrides = {"maps": {"t": {"type": "pcre", "entries": {"/a/": "b"}}, "h": {"entries": {"a": "b"}}},
                 "main": {"transport_maps": "maps:h", "smtpd_sender_restrictions": "check_sender_access proxy:maps:t"},
                 "master": {"smtp/inet": {"command": "smtpd",
                                          "options": {"smtpd_recipient_restrictions": "check_recipient_access,maps:t"}}}}
    params = main(**overrides)
    assert params["transport_maps"] == "${default_database_type}:/etc/postfix/maps/h"
    assert params["smtpd_sender_restrictions"] == "check_sender_access proxy:pcre:/etc/postfix/maps/t"
    options = records.master(settings(**overrides))["smtp/inet"]["options"]
    assert options["smtpd_recipient_restrictions"] == "check_recipient_access,pcre:/etc/postfix/maps/t"


@pytest.mark.parametrize("overrides, key", [
    ({"main": {"transport_maps": "maps:nope"}}, "main:transport_maps"),
    ({"maps": {"x": {"type": "dbm", "entries": {}}}}, "maps:x:type"),
    ({"maps": {"x": {"entries": {"a": "b"}, "secret": True, "mode": "0644"}}}, "maps:x:mode"),
    ({"maps": {"../x": {"entries": {}}}}, "maps:../x"),
    ({"maps": {"x": {"entries": {"a": "two\nlines"}}}}, "maps:x:entries:a"),
])
def test_bad_maps_pillar_names_the_key(overrides, key):
    with pytest.raises(SaltInvocationError, match=f"pillar postfix:{key}"):
        main(**overrides)


def test_entry_order_kept_and_null_drops_an_entry():
    maps = records.static_maps(settings(maps={"p": {"type": "pcre", "entries": {"/z/": "1", "/a/": "2", "/m/": None}}}))
    assert maps["p"]["entries"] == [["/z/", "1"], ["/a/", "2"]]
    assert not maps["p"]["indexed"]


def test_aliases_become_alias_maps():
    params = main(aliases={"team": ["a@example.com", "b@example.com"]})
    assert params["alias_maps"] == params["alias_database"] == "${default_database_type}:/etc/postfix/maps/aliases"
    assert records.static_maps(settings(aliases={"team": ["a", "b"]}))["aliases"]["entries"] == [["team", "a, b"]]


def test_policy_checks_after_reject_unauth_destination():
    params = main(policy={"postgrey": {"enabled": True}, "spf": {"enabled": True}})
    assert params["smtpd_recipient_restrictions"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, "
        "check_policy_service inet:127.0.0.1:10023, check_policy_service unix:private/policyd-spf")
    service = records.master(settings(policy={"spf": {"enabled": True}}))["policyd-spf/unix"]
    assert service["command"].startswith("spawn user=policyd-spf argv=/usr/bin/policyd-spf ")


def test_the_quota_check_comes_after_the_policy_checks():
    """Its OK ends the list: greylisting and SPF must have had their say."""
    params = main(policy={"postgrey": {"enabled": True}}, quota={"enabled": True, "backend": "dovecot"},
                  postfixadmin={"enabled": True}, dovecot={"enabled": True})
    assert params["smtpd_recipient_restrictions"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, "
        "check_policy_service inet:127.0.0.1:10023, "
        "check_recipient_access proxy:pgsql:/etc/postfix/pgsql/quota_check.cf, reject_unlisted_recipient")


def test_srs_needs_a_domain():
    with pytest.raises(SaltInvocationError, match="pillar postfix:policy:srs:domain"):
        main(policy={"srs": {"enabled": True}})
    params = main(policy={"srs": {"enabled": True, "domain": "example.com"}})
    assert params["sender_canonical_maps"] == "tcp:127.0.0.1:10001"
