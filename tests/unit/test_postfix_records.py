"""postfix_records: pillar -> main.cf/master.cf records, with plain dicts."""

import copy
import pathlib

import pytest
import yaml
from salt.exceptions import SaltInvocationError

from tests.harness import salt_modules

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "postfix" / "defaults.yaml").read_text())["postfix"]
records = salt_modules.load("modules", "postfix_records")


def settings(**overrides):
    """defaults.yaml's tree with config_dir set (as map.jinja does) and OVERRIDES merged in."""
    return records.merge(copy.deepcopy(DEFAULTS), {"config_dir": "/etc/postfix"}, overrides)


def main(mem_total=4096, **overrides):
    return records.main(settings(**overrides), mem_total=mem_total)


def test_defaults_give_the_documents_hardening_and_performance():
    assert main() == {
        "smtpd_helo_required": "yes",
        "smtpd_helo_restrictions": "permit_sasl_authenticated, reject_invalid_helo_hostname, "
        "reject_unknown_helo_hostname, reject_non_fqdn_helo_hostname",
        "disable_vrfy_command": "yes",
        "smtpd_banner": "$myhostname ESMTP NO UCE",
        "message_size_limit": "20971520",
        "biff": "no",
        "default_process_limit": "75",
    }


def test_defaults_add_no_master_services():
    assert records.master(settings()) == {}


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("safe", "permit_naked_ip_address, reject_invalid_helo_hostname"),
        (
            "mynetworks",
            "permit_mynetworks, reject_invalid_helo_hostname, reject_unknown_helo_hostname, "
            "reject_non_fqdn_helo_hostname",
        ),
    ],
)
def test_helo_presets(preset, expected):
    assert main(hardening={"helo_restrictions": preset})["smtpd_helo_restrictions"] == expected


def test_helo_list_gets_todays_names():
    old_names = ["permit_mynetworks", "reject_invalid_hostname", "reject_non_fqdn_hostname", "reject_unknown_hostname"]
    assert records.helo_restrictions(old_names) == [
        "permit_mynetworks",
        "reject_invalid_helo_hostname",
        "reject_non_fqdn_helo_hostname",
        "reject_unknown_helo_hostname",
    ]


@pytest.mark.parametrize(
    "hardening, key",
    [
        ({"helo_restrictions": "paranoid"}, "hardening:helo_restrictions"),
        ({"helo_restrictions": []}, "hardening:helo_restrictions"),
        ({"banner": "ESMTP $myhostname"}, "hardening:banner"),
        ({"banner": "$myhostname NO UCE ESMTP"}, "hardening:banner"),
        ({"banner": "$myhostname ESMTP\nX"}, "hardening:banner"),
        ({"message_size_limit": -1}, "hardening:message_size_limit"),
        ({"helo_required": "maybe"}, "hardening:helo_required"),
    ],
)
def test_bad_hardening_names_the_key(hardening, key):
    with pytest.raises(SaltInvocationError, match=f"postfix:{key}"):
        main(hardening=hardening)


@pytest.mark.parametrize(
    "banner", ["$myhostname ESMTP", "${myhostname} ESMTP ready", "mx1.example.com ESMTP NO UCE"]
)
def test_banners_with_the_host_name_then_esmtp_pass(banner):
    assert main(hardening={"banner": banner})["smtpd_banner"] == banner


def test_banner_null_leaves_postfixs_banner():
    assert "smtpd_banner" not in main(hardening={"banner": None})


@pytest.mark.parametrize(
    "mem_total, expected",
    [(4096, 128), (24105, 753), (10, 1)],
)
def test_process_limit_auto_follows_the_sizing_rule(mem_total, expected):
    performance = {"process_limit": "auto", "process_memory_mb": 16, "memory_share": 0.5}
    assert main(mem_total=mem_total, performance=performance)["default_process_limit"] == str(expected)


def test_process_limit_auto_reads_the_memory_grain(monkeypatch):
    monkeypatch.setattr(records, "__grains__", {"mem_total": 2048}, raising=False)
    assert records.process_limit(settings(performance={"process_limit": "auto"})) == 64


@pytest.mark.parametrize(
    "performance, key",
    [
        ({"process_limit": 0}, "performance:process_limit"),
        ({"process_limit": "many"}, "performance:process_limit"),
        ({"process_limit": "auto", "memory_share": 1.5}, "performance:memory_share"),
        ({"process_limit": "auto", "process_memory_mb": 0}, "performance:process_memory_mb"),
        ({"biff": "no"}, "performance:biff"),
    ],
)
def test_bad_performance_names_the_key(performance, key):
    with pytest.raises(SaltInvocationError, match=f"postfix:{key}"):
        main(performance=performance)


def test_relay_uses_proxied_pgsql_tables_and_rejects_unauth_destination():
    params = main(relay={"enabled": True})
    assert params["relay_domains"] == "proxy:pgsql:/etc/postfix/pgsql/relay_domains.cf"
    assert params["relay_recipient_maps"] == "proxy:pgsql:/etc/postfix/pgsql/relay_recipient_maps.cf"
    assert params["smtpd_relay_restrictions"].endswith(", reject_unauth_destination")
    assert "proxy_read_maps" not in params


def test_relay_tables_follow_tables_dir_and_proxy_setting():
    params = main(relay={"enabled": True}, postfixadmin={"tables_dir": "/srv/maps", "proxy": False})
    assert params["relay_domains"] == "pgsql:/srv/maps/relay_domains.cf"


def test_relay_restrictions_must_end_with_reject_unauth_destination():
    with pytest.raises(SaltInvocationError, match="postfix:relay:restrictions"):
        main(relay={"enabled": True, "restrictions": ["permit_mynetworks", "permit"]})


def test_postfixadmin_virtual_maps_deliver_over_lmtp_with_dovecot():
    params = main(postfixadmin={"enabled": True}, dovecot={"enabled": True})
    assert params["virtual_mailbox_domains"] == "proxy:pgsql:/etc/postfix/pgsql/virtual_mailbox_domains.cf"
    tables = "proxy:pgsql:/etc/postfix/pgsql"
    assert params["virtual_mailbox_maps"] == (
        f"{tables}/virtual_mailbox_maps.cf, {tables}/virtual_alias_domain_mailbox_maps.cf"
    )
    assert params["virtual_alias_maps"] == (
        f"{tables}/virtual_alias_maps.cf, {tables}/virtual_alias_domain_maps.cf, "
        f"{tables}/virtual_alias_domain_catchall_maps.cf"
    )
    assert params["virtual_transport"] == "lmtp:unix:private/dovecot-lmtp"
    assert params["virtual_uid_maps"] == "static:5000"


def test_postfixadmin_without_dovecot_delivers_with_virtual():
    params = main(postfixadmin={"enabled": True})
    assert "virtual_transport" not in params
    assert params["virtual_mailbox_base"] == "/var/vmail"


QUOTA_CHECK = "check_recipient_access proxy:pgsql:/etc/postfix/pgsql/quota_check.cf"
DOVECOT_QUOTA = {"quota": {"enabled": True, "backend": "dovecot"}, "postfixadmin": {"enabled": True},
                 "dovecot": {"enabled": True}}


def test_dovecot_quota_asks_the_policy_service_through_the_quota_check():
    params = main(quota={"enabled": True, "backend": "auto"}, postfixadmin={"enabled": True}, dovecot={"enabled": True})
    assert params["smtpd_recipient_restrictions"] == f"{QUOTA_CHECK}, reject_unlisted_recipient"
    assert params["smtpd_restriction_classes"] == "quota_status"
    assert params["quota_status"] == "check_policy_service inet:127.0.0.1:12340"
    assert params["virtual_transport"] == "lmtp:unix:private/dovecot-lmtp"


def test_the_quota_check_alone_spares_postfix_its_second_look_at_the_mailbox():
    """Its OK vouches for the mailbox and its reject_unlisted_recipient checks every other
    recipient: Postfix's implicit check after the list is off only then."""
    assert main(**DOVECOT_QUOTA)["smtpd_reject_unlisted_recipient"] == "no"
    assert "smtpd_reject_unlisted_recipient" not in main(quota={"enabled": False}, postfixadmin={"enabled": True})


@pytest.mark.parametrize("extra", [
    {"policy": {"postgrey": {"enabled": True}}},  # permit_mynetworks ... end the list before the quota check
    {"main": {"smtpd_recipient_restrictions": "check_recipient_access hash:/etc/postfix/rcpt"}},
    {"main": {"smtpd_recipient_restrictions": f"{QUOTA_CHECK}, permit"}},
])
def test_any_other_recipient_list_keeps_postfixs_own_check(extra):
    assert "smtpd_reject_unlisted_recipient" not in main(**records.merge(DOVECOT_QUOTA, extra))


def test_a_service_with_its_own_recipient_list_keeps_postfixs_check():
    """main.cf's implicit check is off for the quota check's list only: a service replacing it
    (submission's -o here) gets the check back, unless it says otherwise."""
    own = {"submission": {"enabled": True, "options": {"smtpd_recipient_restrictions": "permit_sasl_authenticated,reject"}}}
    options = records.master(settings(**records.merge(DOVECOT_QUOTA, own)))["submission/inet"]["options"]
    assert options["smtpd_reject_unlisted_recipient"] == "yes"
    said = records.merge(own, {"submission": {"options": {"smtpd_reject_unlisted_recipient": "no"}}})
    options = records.master(settings(**records.merge(DOVECOT_QUOTA, said)))["submission/inet"]["options"]
    assert options["smtpd_reject_unlisted_recipient"] == "no"
    options = records.master(settings(**own))["submission/inet"]["options"]
    assert "smtpd_reject_unlisted_recipient" not in options, "Postfix's default already checks"
    enabled = records.merge(DOVECOT_QUOTA, {"submission": {"enabled": True}})
    plain = records.master(settings(**enabled))["submission/inet"]["options"]
    assert "smtpd_reject_unlisted_recipient" not in plain, "main.cf's list applies there"


def test_postfix_main_decides_the_implicit_check_itself():
    params = main(**records.merge(DOVECOT_QUOTA, {"main": {"smtpd_reject_unlisted_recipient": "yes"}}))
    assert params["smtpd_reject_unlisted_recipient"] == "yes"


def test_the_quota_class_joins_restriction_classes_of_raw_main():
    params = main(quota={"enabled": True, "backend": "dovecot"}, main={"smtpd_restriction_classes": "mine", "mine": "permit"})
    assert params["smtpd_restriction_classes"] == "mine, quota_status"
    assert main(quota={"enabled": False}, main={"smtpd_restriction_classes": "mine"})["smtpd_restriction_classes"] == "mine"


@pytest.mark.parametrize("raw, expected", [({}, "20971520"), ({"message_size_limit": 1000}, "1000"),
                                           ({"message_size_limit": "2000"}, "2000"), ({"message_size_limit": 0}, "mailbox.quota")])
def test_the_quota_check_bound_is_the_largest_message_postfix_takes(raw, expected):
    query = records.table_query(settings(main=raw), "SELECT $message_size_limit")
    assert query == f"SELECT {expected}"


def test_a_bad_message_size_limit_is_named():
    with pytest.raises(SaltInvocationError, match=r"postfix:main:message_size_limit: must be a number of bytes.*-1"):
        records.message_size_limit(settings(main={"message_size_limit": -1}))


def test_dovecot_quota_policy_service_must_be_dovecots_quota_status():
    quota = {"enabled": True, "backend": "dovecot"}
    listen = {"quota_status_listen": {"address": "127.0.0.5", "port": 10030}}
    params = main(quota={**quota, "policy_service": "inet:127.0.0.5:10030"}, dovecot=listen)
    assert params["quota_status"] == "check_policy_service inet:127.0.0.5:10030"
    refusal = r"postfix:quota:policy_service \(inet:127.0.0.1:12340\) must be inet:127.0.0.5:10030 or null"
    with pytest.raises(SaltInvocationError, match=refusal):
        main(quota={**quota, "policy_service": "inet:127.0.0.1:12340"}, dovecot=listen)


def test_vda_quota_writes_the_documents_parameters():
    params = main(quota={"enabled": True, "backend": "vda"}, postfixadmin={"enabled": True},
                  dovecot={"enabled": True})
    expected = {
        "virtual_mailbox_limit_maps": "proxy:pgsql:/etc/postfix/pgsql/virtual_mailbox_limit_maps.cf",
        "virtual_mailbox_limit_inbox": "no",
        "virtual_mailbox_limit_override": "yes",
        "virtual_maildir_extended": "yes",
        "virtual_overquota_bounce": "no",
        "virtual_maildir_limit_message": "Sorry, the recipients mailbox is currently full. Please try again later.",
        "virtual_trash_count": "no",
        "virtual_trash_name": ".Trash",
        "virtual_maildir_filter": "no",
        "mailbox_size_limit": "0",
    }
    assert {name: params[name] for name in expected} == expected
    assert "virtual_transport" not in params, "VDA quotas only work with virtual(8) delivery"


def test_records_are_pure_with_every_feature_on():
    """Rendering must work on a minion without Postfix: no execution module is
    asked (the module gets no __salt__ at all here)."""
    assert not hasattr(records, "__salt__")
    everything = {name: {"enabled": True} for name in ("relay", "postfixadmin", "dovecot", "quota", "submission")}
    params = main(**everything, main={"sender_bcc_maps": "proxy:pgsql:/etc/postfix/bcc.cf"})
    assert params["relay_domains"].startswith("proxy:pgsql:")
    assert "proxy_read_maps" not in params, "the postconf.parameters state extends it when it runs"
    assert records.master(settings(**everything))["submission/inet"]["command"] == "smtpd"


def test_queue_directory_is_refused_in_raw_main():
    with pytest.raises(SaltInvocationError, match="postfix:main:queue_directory: is set only through "
                                                  "postfix:performance:queue:directory, got '/srv/queue'"):
        main(main={"queue_directory": "/srv/queue"})


def test_auto_quota_picks_vda_only_where_the_os_package_has_the_patch():
    assert records.quota_backend(settings(quota={"backend": "auto"})) == "dovecot"
    assert records.quota_backend(settings(quota={"backend": "auto"}, lookup={"vda_builtin": True})) == "vda"
    assert records.quota_backend(settings(quota={"backend": "dovecot"}, lookup={"vda_builtin": True})) == "dovecot"


def test_vda_backend_asks_the_states_to_check_the_patch():
    check = records.vda_check(settings(quota={"enabled": True, "backend": "vda"}))
    assert check["known"] == ["virtual_mailbox_limit_maps"]
    assert check["reason"].startswith("pillar postfix:quota:backend: vda needs a Postfix built with the VDA")
    assert records.vda_check(settings(quota={"enabled": True, "backend": "dovecot"})) is None
    assert records.vda_check(settings(quota={"enabled": False, "backend": "vda"})) is None


def test_vda_check_says_where_this_os_gets_the_patch():
    check = records.vda_check(settings(quota={"enabled": True, "backend": "vda"},
                                       lookup={"vda_patch": "rebuild with USE=vda"}))
    assert check["reason"].endswith("(rebuild with USE=vda)")


def test_queue_directory_is_the_move_target_else_the_os_default():
    assert records.queue_directory(settings()) == "/var/spool/postfix"
    assert records.queue_directory(settings(performance={"queue": {"directory": "/srv/q"}})) == "/srv/q"


@pytest.mark.parametrize("quota", [-1, 9223372036854774785, "10M", True])
def test_bad_mailbox_quota_names_the_mailbox(quota):
    mailboxes = {"user@example.com": {"quota": quota}}
    with pytest.raises(SaltInvocationError, match="postfix:postfixadmin:mailboxes:user@example.com:quota"):
        main(postfixadmin={"mailboxes": mailboxes})


def test_largest_usable_quota_passes():
    main(postfixadmin={"mailboxes": {"user@example.com": {"quota": records.MAX_QUOTA}}})


def test_raw_main_wins_and_null_removes():
    params = main(main={"biff": "yes", "smtpd_banner": None, "myorigin": "example.com"})
    assert params["biff"] == "yes"
    assert params["smtpd_banner"] is None
    assert params["myorigin"] == "example.com"


def test_submission_is_the_documents_service():
    assert records.master(settings(submission={"enabled": True})) == {
        "submission/inet": {
            "private": "n",
            "unpriv": "-",
            "chroot": "n",
            "wakeup": "-",
            "maxproc": "-",
            "command": "smtpd",
            "options": {
                "smtpd_tls_security_level": "may",
                "smtpd_sasl_auth_enable": "yes",
                "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
                "smtpd_sasl_type": "dovecot",
                "smtpd_sasl_path": "private/auth",
            },
        }
    }


def test_submission_options_and_raw_master_override():
    services = records.master(
        settings(
            submission={"enabled": True, "tls_security_level": "encrypt", "options": {"smtpd_tls_auth_only": "yes"}},
            master={"submission/inet": {"maxproc": "10"}, "smtps/inet": {"enabled": False}},
        )
    )
    submission = services["submission/inet"]
    assert submission["maxproc"] == "10"
    assert submission["options"]["smtpd_tls_security_level"] == "encrypt"
    assert submission["options"]["smtpd_tls_auth_only"] == "yes"
    assert services["smtps/inet"] == {"enabled": False}


def test_option_values_go_to_postconf_as_given_and_null_drops_them():
    pillar = settings(
        submission={"enabled": True, "options": {"smtpd_tls_auth_only": False, "smtpd_sasl_type": None}},
        master={"relay/unix": {"command": "smtp", "options": {"smtp_helo_timeout": None, "smtp_tls_loglevel": 1}}},
    )
    services = records.master(pillar)
    assert services["submission/inet"]["options"]["smtpd_tls_auth_only"] is False, "postconf writes it as no"
    assert "smtpd_sasl_type" not in services["submission/inet"]["options"]
    assert services["relay/unix"]["options"] == {"smtp_tls_loglevel": 1}
    assert pillar["master"]["relay/unix"]["options"]["smtp_helo_timeout"] is None, "the pillar is not changed"


def test_sasl_path_defaults_to_dovecots_auth_socket():
    pillar = settings(submission={"enabled": True}, dovecot={"enabled": True, "auth_socket": "private/dovecot-auth"})
    assert records.master(pillar)["submission/inet"]["options"]["smtpd_sasl_path"] == "private/dovecot-auth"


def test_sasl_path_must_be_the_formulas_dovecot_auth_socket():
    submission = {"enabled": True, "sasl": {"path": "private/auth-other"}}
    with pytest.raises(SaltInvocationError, match="postfix:submission:sasl:path: must be null or private/auth"):
        records.master(settings(submission=submission, dovecot={"enabled": True}))
    own_dovecot = records.master(settings(submission=submission))
    assert own_dovecot["submission/inet"]["options"]["smtpd_sasl_path"] == "private/auth-other"


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"submission": {"enabled": True, "tls_security_level": "none"}}, "submission:tls_security_level"),
        ({"submission": {"enabled": True, "client_restrictions": "reject"}}, "submission:client_restrictions"),
        ({"master": {"submission": {"command": "smtpd"}}}, "master:submission"),
        ({"master": {"submission/tcp": {"command": "smtpd"}}}, "master:submission/tcp"),
    ],
)
def test_bad_master_settings_name_the_key(overrides, key):
    with pytest.raises(SaltInvocationError, match=f"postfix:{key}"):
        records.master(settings(**overrides))


def test_missing_key_is_named():
    broken = settings()
    del broken["hardening"]["banner"]
    with pytest.raises(SaltInvocationError, match="postfix:hardening:banner is missing"):
        records.main(broken, mem_total=4096)


def test_table_files_by_feature():
    assert records.feature_tables("relay") == ["relay_domains", "relay_recipient_maps"]
    assert records.all_tables(settings(postfixadmin={"tables_dir": "/srv/maps"})) == {
        name: f"/srv/maps/{name}.cf"
        for name in ("relay_domains", "relay_recipient_maps", "virtual_mailbox_domains", "virtual_mailbox_maps",
                     "virtual_alias_domain_mailbox_maps", "virtual_alias_maps", "virtual_alias_domain_maps",
                     "virtual_alias_domain_catchall_maps", "virtual_mailbox_limit_maps", "quota_check")
    }
    with pytest.raises(SaltInvocationError, match="unknown feature 'quota'"):
        records.feature_tables("quota")


def test_merge_is_recursive_and_keeps_nulls():
    assert records.merge({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"c": None}, "d": [2]}) == {
        "a": {"b": 1, "c": None},
        "d": [2],
    }


@pytest.mark.parametrize("key, pillar", [
    ("hardening:helo_restrictions", {"hardening": {"helo_restrictions": ["permit_mynetworks", "reject_bogus_helo"]}}),
    ("relay:restrictions", {"relay": {"enabled": True, "restrictions": ["permit_mynetwork", "reject_unauth_destination"]}}),
    ("submission:client_restrictions", {"submission": {"enabled": True, "client_restrictions": ["permit_sasl", "reject"]}}),
    ("hardening:helo_restrictions",
     {"hardening": {"helo_restrictions": ["permit_mynetworks reject_unknwon_helo_hostname", "reject"]}}),
])
def test_unknown_restriction_names_are_refused_naming_key_and_name(key, pillar):
    """A second word is read as a restriction too, unless the first takes an argument."""
    bad = [word for item in pillar[key.split(":")[0]][key.split(":")[1]] for word in item.split()
           if word not in ("permit_mynetworks", "reject", "reject_unauth_destination")][0]
    with pytest.raises(SaltInvocationError, match=rf"pillar postfix:{key}: {bad} is not a Postfix restriction"):
        main(**pillar)
        records.master(settings(**pillar))


def test_restriction_lists_take_tables_arguments_and_old_names():
    helo = ["permit_mynetworks", "check_helo_access pcre:/etc/postfix/helo.pcre", "hash:/etc/postfix/access",
            "reject_invalid_hostname", "sleep 1", "warn_if_reject reject_non_fqdn_helo_hostname",
            "permit_sasl_authenticated reject_rbl_client zen.example.org"]
    assert main(hardening={"helo_restrictions": helo})["smtpd_helo_restrictions"].startswith("permit_mynetworks, check")
    assert main(hardening={"helo_restrictions": ["check_helo_access", "pcre:/etc/postfix/helo.pcre"]})


#: master.cf and main.cf pillar the postconf module would refuse when its state runs, after other
#: states changed things: (overrides, error message start)
REFUSED_BY_POSTCONF = {
    "whitespace-in-a-submission-option": (
        {"submission": {"enabled": True, "options": {"smtpd_sender_restrictions": "reject_unknown_sender_domain reject"}}},
        "pillar postfix:submission: service submission/inet -o smtpd_sender_restrictions: value contains whitespace"),
    "option-name": ({"master": {"smtps/inet": {"command": "smtpd", "options": {"bad name": "x"}}}},
                    "pillar postfix:master:smtps/inet: invalid Postfix -o parameter name in service smtps/inet: "
                    "'bad name'"),
    "field-typo": ({"master": {"smtps/inet": {"command": "smtpd", "privat": "n"}}},
                   "pillar postfix:master:smtps/inet: service smtps/inet: unknown field(s) privat"),
    "enabled-quoted": ({"master": {"smtps/inet": {"command": "smtpd", "enabled": "no"}}},
                       "pillar postfix:master:smtps/inet: service smtps/inet: enabled must be true or false"),
    "no-command": ({"master": {"smtps/inet": {"options": {"syslog_name": "postfix/smtps"}}}},
                   "pillar postfix:master:smtps/inet: service smtps/inet: a command is required"),
    "wakeup": ({"master": {"flush/unix": {"command": "flush", "wakeup": "60s"}}},
               "pillar postfix:master:flush/unix: service flush/unix: invalid wakeup field '60s'"),
    "service-name": ({"master": {"fo o/unix": {"command": "smtpd"}}},
                     "pillar postfix:master:fo o/unix: invalid master.cf service name 'fo o'"),
    "main-name": ({"main": {"bad name": "x"}}, "pillar postfix:main: invalid Postfix parameter name: 'bad name'"),
    "main-value": ({"main": {"mynetworks": {"a": "b"}}},
                   "pillar postfix:main: parameter mynetworks: value must be text, a number, a boolean or a list"),
}


@pytest.mark.parametrize("overrides,message", REFUSED_BY_POSTCONF.values(), ids=REFUSED_BY_POSTCONF.keys())
def test_what_postconf_would_refuse_is_refused_while_rendering(overrides, message):
    """main() and master() run while config/init.sls renders: nothing has been applied yet."""
    with pytest.raises(SaltInvocationError) as error:
        records.master(settings(**overrides))
    assert str(error.value).startswith(message), str(error.value)
