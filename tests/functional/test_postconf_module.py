"""The postconf execution module against real postconf(1) on sandbox config dirs."""

import pytest
from salt.exceptions import SaltInvocationError

SUBMISSION = {
    "private": "n",
    "unpriv": "-",
    "chroot": "n",
    "wakeup": "-",
    "maxproc": "-",
    "command": "smtpd",
    "options": {
        "syslog_name": "postfix/submission",
        "smtpd_tls_security_level": "may",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
    },
}


@pytest.fixture
def config(sandbox_config):
    return sandbox_config


@pytest.fixture
def postconf(modules):
    return modules.postconf


# --- main.cf -----------------------------------------------------------------


def test_get_returns_setting_and_default(postconf, config):
    assert postconf.get("myhostname", config_dir=str(config)) == "mx1.example.test"
    assert postconf.get("biff", config_dir=str(config)) == "yes"


def test_get_reads_postconf_once_per_main_cf_content(postconf, config, postconf_calls):
    """A run asks for the same parameters from several states: postconf runs again
    only when main.cf's content changed, whoever changed it."""
    assert postconf.get("biff", config_dir=str(config)) == "yes"
    assert postconf.get("biff", config_dir=str(config)) == "yes"
    assert postconf_calls() == ["-h biff"]
    everything = postconf.show(config_dir=str(config), defaults=True)
    postconf_calls.reset()
    assert postconf.show(config_dir=str(config), defaults=True) == everything
    assert postconf.get("queue_directory", config_dir=str(config)) == everything["queue_directory"]
    assert postconf_calls() == [], "the full listing answers later reads"
    text = config.main_cf.read_text()
    config.main_cf.write_text(text + "biff = no\n")  # not through postconf, same second
    assert postconf.get("biff", config_dir=str(config)) == "no"
    config.main_cf.write_text(text + "biff = on\n")  # the same size again
    assert postconf.get("biff", config_dir=str(config)) == "on"


def test_get_refuses_unknown_and_malformed_names(postconf, config):
    with pytest.raises(SaltInvocationError, match="smtpd_helo_requird"):
        postconf.get("smtpd_helo_requird", config_dir=str(config))
    with pytest.raises(SaltInvocationError, match="bad name"):
        postconf.get("bad name", config_dir=str(config))


def test_default_ignores_main_cf_and_refuses_unknown_names(postconf, config):
    postconf.set({"biff": "no"}, config_dir=str(config))
    assert postconf.default("biff", config_dir=str(config)) == "yes"
    with pytest.raises(SaltInvocationError, match="unknown Postfix parameter: virtual_mailbox_limit_maps"):
        postconf.default("virtual_mailbox_limit_maps", config_dir=str(config))
    with pytest.raises(SaltInvocationError, match="bad name"):
        postconf.default("bad name", config_dir=str(config))


def test_show_lists_explicit_settings_or_everything(postconf, config):
    explicit = postconf.show(config_dir=str(config))
    assert explicit["myhostname"] == "mx1.example.test"
    assert "biff" not in explicit
    everything = postconf.show(config_dir=str(config), defaults=True)
    assert everything["biff"] == "yes"
    assert everything["myhostname"] == "mx1.example.test"
    assert len(everything) > 500


def test_set_writes_only_what_differs_in_one_call(postconf, config, postconf_calls):
    changes = postconf.set(
        {"biff": False, "message_size_limit": 20971520, "myhostname": "mx1.example.test"}, config_dir=str(config)
    )
    assert changes == {
        "biff": {"old": None, "new": "no"},
        "message_size_limit": {"old": None, "new": "20971520"},
    }
    assert config.postconf("-n", "biff", "message_size_limit") == "biff = no\nmessage_size_limit = 20971520\n"
    writes = [call for call in postconf_calls() if call.startswith("-e")]
    assert writes == ["-e biff=no message_size_limit=20971520"]

    postconf_calls.reset()
    assert postconf.set({"biff": "no", "message_size_limit": "20971520"}, config_dir=str(config)) == {}
    assert postconf_calls() == ["-n"]


def test_set_changes_and_removes_in_one_call_each(postconf, config, postconf_calls):
    changes = postconf.set({"mynetworks": "127.0.0.0/8", "smtputf8_enable": None}, config_dir=str(config))
    assert changes == {
        "mynetworks": {"old": "127.0.0.1/32", "new": "127.0.0.0/8"},
        "smtputf8_enable": {"old": "no", "new": None},
    }
    assert "smtputf8_enable" not in config.postconf("-n")
    assert [call.split()[0] for call in postconf_calls()] == ["-n", "-e", "-X", "-n"]


def test_set_joins_lists_and_ignores_whitespace_differences(postconf, config):
    restrictions = ["permit_mynetworks", "reject_unauth_destination"]
    postconf.set({"smtpd_relay_restrictions": restrictions}, config_dir=str(config))
    assert (
        postconf.get("smtpd_relay_restrictions", config_dir=str(config))
        == "permit_mynetworks, reject_unauth_destination"
    )
    postconf.set({"smtpd_banner": "$myhostname ESMTP  NO UCE"}, config_dir=str(config))
    assert postconf.set({"smtpd_banner": "$myhostname ESMTP  NO UCE"}, config_dir=str(config)) == {}
    assert postconf.set({"smtpd_relay_restrictions": restrictions}, config_dir=str(config)) == {}


def test_set_test_mode_predicts_and_writes_nothing(postconf, config):
    before = config.snapshot()
    assert postconf.set({"biff": "no"}, config_dir=str(config), test=True) == {"biff": {"old": None, "new": "no"}}
    assert config.snapshot() == before


def test_user_defined_parameters_need_declaring(postconf, config):
    wanted = {"mua_client_restrictions": "permit_sasl_authenticated, reject"}
    before = config.snapshot()
    with pytest.raises(SaltInvocationError, match="mua_client_restrictions"):
        postconf.set(wanted, config_dir=str(config))
    assert config.snapshot() == before

    changes = postconf.set(wanted, config_dir=str(config), user_defined=["mua_client_restrictions"])
    assert changes == {"mua_client_restrictions": {"old": None, "new": "permit_sasl_authenticated, reject"}}
    # nothing references it yet, so postconf -n hides it: the module still sees it
    assert "mua_client_restrictions" not in config.postconf("-n")
    assert postconf.set(wanted, config_dir=str(config), user_defined=["mua_client_restrictions"]) == {}
    assert postconf.get("mua_client_restrictions", config_dir=str(config)) == "permit_sasl_authenticated, reject"
    assert postconf.show(config_dir=str(config))["mua_client_restrictions"] == "permit_sasl_authenticated, reject"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"bad name": "x"}, "bad name"),
        ({"-e": "x"}, "-e"),
        ({"smtpd_helo_requird": "yes"}, "smtpd_helo_requird"),
        ({"biff": "no", "smtpd_banner": "line one\nline two"}, "smtpd_banner"),
        ({"smtpd_banner": "bell\x07"}, "smtpd_banner"),
        ({"smtpd_banner": {"nested": "dict"}}, "smtpd_banner"),
    ],
)
def test_set_refuses_bad_input_and_writes_nothing(postconf, config, params, named):
    before = config.snapshot()
    with pytest.raises(SaltInvocationError) as error:
        postconf.set(params, config_dir=str(config))
    assert named in str(error.value)
    assert config.snapshot() == before


def test_restriction_classes_are_known_with_smtpd_restriction_classes(postconf, config):
    """Postfix knows the classes smtpd_restriction_classes lists: set together, no declaring needed."""
    wanted = {"smtpd_restriction_classes": "near_quota, strict", "near_quota": "check_policy_service inet:127.0.0.1:9",
              "strict": "reject"}
    changes = postconf.set(wanted, config_dir=str(config))
    assert set(changes) == set(wanted)
    assert config.postconf("-h", "near_quota").strip() == "check_policy_service inet:127.0.0.1:9"
    assert postconf.set(wanted, config_dir=str(config)) == {}
    with pytest.raises(SaltInvocationError, match="unknown Postfix parameter.*: other_class"):
        postconf.set({"smtpd_restriction_classes": "near_quota", "other_class": "reject"}, config_dir=str(config))


def test_set_refuses_a_malformed_user_defined_name(postconf, config):
    with pytest.raises(SaltInvocationError, match="not a name"):
        postconf.set({"biff": "no"}, config_dir=str(config), user_defined=["not a name"])


def test_unset_removes_in_one_call(postconf, config, postconf_calls):
    assert postconf.unset(["smtputf8_enable", "biff"], config_dir=str(config)) == {
        "smtputf8_enable": {"old": "no", "new": None}
    }
    assert "smtputf8_enable" not in config.postconf("-n")
    assert [call for call in postconf_calls() if call.startswith("-X")] == ["-X smtputf8_enable"]
    assert postconf.unset("smtputf8_enable", config_dir=str(config)) == {}


# --- master.cf ---------------------------------------------------------------


def test_services_parses_master_cf(postconf, config):
    services = postconf.services(config_dir=str(config))
    assert services["smtp/inet"] == {
        "private": "n",
        "unpriv": "-",
        "chroot": "n",
        "wakeup": "-",
        "maxproc": "-",
        "command": "smtpd",
        "options": {},
    }
    assert services["relay/unix"]["command"] == "smtp"
    assert services["relay/unix"]["options"] == {"syslog_name": "postfix/$service_name"}
    assert services["pickup/unix"]["wakeup"] == "60"
    assert services["postlog/unix-dgram"]["command"] == "postlogd"
    assert services["maildrop/unix"]["command"] == "pipe flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}"
    assert services["maildrop/unix"]["options"] == {}


def test_services_parses_grouped_option_values(postconf, config):
    config.postconf(
        "-M",
        "submission/inet=submission inet n - n - - smtpd -v "
        "-o { smtpd_client_restrictions = permit_sasl_authenticated, reject } -o syslog_name=postfix/submission",
    )
    entry = postconf.services(config_dir=str(config))["submission/inet"]
    assert entry["command"] == "smtpd -v"
    assert entry["options"] == {
        "smtpd_client_restrictions": "permit_sasl_authenticated, reject",
        "syslog_name": "postfix/submission",
    }


def test_set_service_adds_a_service_with_options(postconf, config, postconf_calls):
    fields = {key: value for key, value in SUBMISSION.items() if key != "options"}
    changes = postconf.set_service(
        "submission/inet", fields=fields, options=SUBMISSION["options"], config_dir=str(config)
    )
    assert changes == {"submission/inet": {"old": None, "new": SUBMISSION}}
    assert config.postconf("-P", "submission/inet").splitlines() == [
        "submission/inet/smtpd_client_restrictions = permit_sasl_authenticated,reject",
        "submission/inet/smtpd_sasl_auth_enable = yes",
        "submission/inet/smtpd_tls_security_level = may",
        "submission/inet/syslog_name = postfix/submission",
    ]
    assert [call.split()[0] for call in postconf_calls()] == ["-M", "-d", "-M", "-M"]
    assert (
        postconf.set_service("submission/inet", fields=fields, options=SUBMISSION["options"], config_dir=str(config))
        == {}
    )


def test_set_service_edits_fields_and_options_one_call_per_kind(postconf, config, postconf_calls):
    postconf.set_services({"submission/inet": SUBMISSION}, config_dir=str(config))
    postconf_calls.reset()
    changes = postconf.set_service(
        "submission/inet",
        fields={"maxproc": 20, "private": "y"},
        options={"smtpd_tls_security_level": "encrypt", "syslog_name": None, "milter_macro_daemon_name": "ORIGINATING"},
        config_dir=str(config),
    )
    new = changes["submission/inet"]["new"]
    assert (new["maxproc"], new["private"]) == ("20", "y")
    assert new["options"] == {
        "smtpd_tls_security_level": "encrypt",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
        "milter_macro_daemon_name": "ORIGINATING",
    }
    assert sorted(postconf_calls()[2:-1]) == [
        "-F submission/inet/private=y submission/inet/process_limit=20",
        "-P submission/inet/smtpd_tls_security_level=encrypt submission/inet/milter_macro_daemon_name=ORIGINATING",
        "-PX submission/inet/syslog_name",
    ]
    assert config.postconf("-F", "submission/inet/process_limit") == "submission/inet/process_limit = 20\n"
    assert postconf.services(config_dir=str(config))["submission/inet"] == new


def test_set_service_changes_the_command_keeping_options(postconf, config):
    postconf.set_services({"submission/inet": SUBMISSION}, config_dir=str(config))
    changes = postconf.set_service("submission/inet", fields={"command": "smtpd -v"}, config_dir=str(config))
    assert changes["submission/inet"]["new"]["command"] == "smtpd -v"
    entry = postconf.services(config_dir=str(config))["submission/inet"]
    assert entry["command"] == "smtpd -v"
    assert entry["options"] == SUBMISSION["options"]


def test_set_service_needs_a_command_for_a_new_service(postconf, config):
    before = config.snapshot()
    with pytest.raises(SaltInvocationError, match="command"):
        postconf.set_service("submission/inet", options={"smtpd_sasl_auth_enable": "yes"}, config_dir=str(config))
    assert config.snapshot() == before


def test_remove_service(postconf, config):
    changes = postconf.remove_service("relay/unix", config_dir=str(config))
    assert changes["relay/unix"]["new"] is None
    assert changes["relay/unix"]["old"]["options"] == {"syslog_name": "postfix/$service_name"}
    assert "relay" not in config.postconf("-M", "relay/unix")
    assert postconf.remove_service("relay/unix", config_dir=str(config)) == {}


def test_set_services_batches_each_kind_of_edit(postconf, config, postconf_calls):
    smtps = {**SUBMISSION, "options": {"syslog_name": "postfix/smtps", "smtpd_tls_wrappermode": "yes"}}
    services = {
        "submission/inet": SUBMISSION,
        "smtps/inet": smtps,
        "smtp/inet": {
            "private": "n",
            "chroot": "n",
            "maxproc": "50",
            "command": "smtpd",
            "options": {"smtpd_tls_security_level": "may"},
        },
        "relay/unix": {"chroot": "n", "command": "smtp", "options": {}},
        "uucp/unix": {"enabled": False},
        "ifmail/unix": {"enabled": False},
    }
    changes = postconf.set_services(services, config_dir=str(config))
    assert sorted(changes) == sorted(services)
    flags = [call.split()[0] for call in postconf_calls()]
    assert flags == ["-M", "-d", "-M", "-F", "-P", "-PX", "-MX", "-M"]
    now = postconf.services(config_dir=str(config))
    assert now["submission/inet"] == SUBMISSION
    assert now["smtps/inet"]["options"] == smtps["options"]
    assert now["smtp/inet"]["maxproc"] == "50"
    assert now["smtp/inet"]["options"] == {"smtpd_tls_security_level": "may"}
    assert now["relay/unix"]["options"] == {}
    assert "uucp/unix" not in now and "ifmail/unix" not in now

    postconf_calls.reset()
    assert postconf.set_services(services, config_dir=str(config)) == {}
    assert postconf_calls() == ["-M"]


def test_set_services_test_mode_writes_nothing(postconf, config):
    before = config.snapshot()
    changes = postconf.set_services({"submission/inet": SUBMISSION}, config_dir=str(config), test=True)
    assert changes == {"submission/inet": {"old": None, "new": SUBMISSION}}
    assert config.snapshot() == before


def _service(**overrides):
    return {"submission/inet": {**SUBMISSION, **overrides}}


@pytest.mark.parametrize(
    ("services", "named"),
    [
        ({"submission": SUBMISSION}, "submission"),
        ({"submission/tcp": SUBMISSION}, "tcp"),
        ({"sub mission/inet": SUBMISSION}, "sub mission"),
        (_service(private="x"), "private"),
        (_service(chroot="yes"), "chroot"),
        (_service(wakeup="soon"), "wakeup"),
        (_service(maxproc="-1"), "maxproc"),
        (_service(command=""), "command"),
        (_service(command="smtpd\n-o x=y"), "command"),
        (_service(command="smtpd -o syslog_name=x"), "-o"),
        (_service(command="-o syslog_name=x smtpd"), "-o"),
        (
            _service(options={"smtpd_client_restrictions": "permit_sasl_authenticated, reject"}),
            "smtpd_client_restrictions",
        ),
        (_service(options={"bad name": "x"}), "bad name"),
        (_service(options={"smtpd_sasl_auth_enabled": "yes"}), "smtpd_sasl_auth_enabled"),
        (_service(options={"syslog_name": "a\tb"}), "syslog_name"),
        (_service(colour="blue"), "colour"),
        (_service(enabled="no"), "enabled"),
    ],
)
def test_set_services_refuses_bad_input_and_writes_nothing(postconf, config, services, named):
    before = config.snapshot()
    with pytest.raises(SaltInvocationError) as error:
        postconf.set_services({"smtp/inet": {"command": "smtpd", "maxproc": "10"}, **services}, config_dir=str(config))
    assert named in str(error.value)
    assert config.snapshot() == before


def test_set_service_refuses_unknown_fields(postconf, config):
    before = config.snapshot()
    with pytest.raises(SaltInvocationError, match="process_limit"):
        postconf.set_service("smtp/inet", fields={"process_limit": "10"}, config_dir=str(config))
    assert config.snapshot() == before


def test_proxy_read_maps_for_adds_what_postfixs_default_leaves_out(postconf, config):
    default = config.postconf("-d", "-h", "proxy_read_maps").strip()
    assert "$virtual_alias_maps" in default.split() and "$smtpd_data_restrictions" not in default.split()
    params = {"virtual_alias_maps": "proxy:pgsql:/x.cf",
              "smtpd_data_restrictions": "check_client_access pgsql:/a.cf, check_sender_access proxy:pgsql:/b.cf",
              "biff": "no"}
    assert postconf.proxy_read_maps_for(params, config_dir=str(config)) == f"{default} $smtpd_data_restrictions"
    assert postconf.proxy_read_maps_for({"virtual_alias_maps": "proxy:pgsql:/x.cf"}, config_dir=str(config)) is None
    assert postconf.proxy_read_maps_for({**params, "proxy_read_maps": "$smtpd_data_restrictions"},
                                        config_dir=str(config)) is None
