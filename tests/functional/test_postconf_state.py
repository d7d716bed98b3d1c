"""The postconf states against real postconf(1) and `postfix check` on sandbox config dirs."""

import pytest

#: Postfix's stall: the first tool to read a freshly written main.cf waits until it is ~2 s old
STALL = 1.8

SUBMISSION_OPTIONS = {
    "syslog_name": "postfix/submission",
    "smtpd_tls_security_level": "may",
    "smtpd_sasl_auth_enable": "yes",
    "smtpd_client_restrictions": "permit_sasl_authenticated,reject",
}
PARAMS = {"biff": False, "message_size_limit": 20971520, "smtpd_banner": "$myhostname ESMTP NO UCE"}


@pytest.fixture
def config(sandbox_config):
    return sandbox_config


@pytest.fixture
def postconf(states):
    return states.postconf


def test_parameters_test_mode_predicts_and_writes_nothing(postconf, config):
    before = config.snapshot()
    ret = postconf.parameters(name="main", params=PARAMS, config_dir=str(config), test=True)
    assert ret.result is None
    assert ret.changes == {
        "biff": {"old": None, "new": "no"},
        "message_size_limit": {"old": None, "new": "20971520"},
        "smtpd_banner": {"old": None, "new": "$myhostname ESMTP NO UCE"},
    }
    assert config.snapshot() == before


def test_parameters_apply_once_then_no_changes(postconf, config, postconf_calls):
    ret = postconf.parameters(name="main", params=PARAMS, config_dir=str(config))
    assert ret.result is True, ret.comment
    assert set(ret.changes) == set(PARAMS)
    assert config.postconf("-h", "biff", "message_size_limit") == "no\n20971520\n"
    # one read, a look-up of known names, one write, one verifying read; postfix check reads main.cf itself
    assert [call.split()[0] for call in postconf_calls()] == ["-n", "-d", "-e", "-n"]
    stalled = [arguments for seconds, arguments in postconf_calls.timed() if seconds > STALL / 2]
    assert stalled == [], "no postconf run waits for main.cf to cool down after the module's own write"

    postconf_calls.reset()
    before = config.snapshot()
    again = postconf.parameters(name="main", params=PARAMS, config_dir=str(config))
    assert again.result is True
    assert again.changes == {}
    assert postconf_calls() == ["-n"]
    assert config.snapshot() == before


def test_parameters_none_removes(postconf, config):
    ret = postconf.parameters(name="main", params={"smtputf8_enable": None, "biff": None}, config_dir=str(config))
    assert ret.result is True, ret.comment
    assert ret.changes == {"smtputf8_enable": {"old": "no", "new": None}}
    assert "smtputf8_enable" not in config.postconf("-n")
    assert postconf.parameters(name="main", params={"smtputf8_enable": None}, config_dir=str(config)).changes == {}


def test_parameters_user_defined(postconf, config):
    params = {"mua_client_restrictions": "permit_sasl_authenticated, reject"}
    refused = postconf.parameters(name="main", params=params, config_dir=str(config))
    assert refused.result is False
    assert "mua_client_restrictions" in refused.comment
    accepted = postconf.parameters(
        name="main", params=params, config_dir=str(config), user_defined=["mua_client_restrictions"]
    )
    assert accepted.result is True, accepted.comment
    assert accepted.changes
    again = postconf.parameters(
        name="main", params=params, config_dir=str(config), user_defined=["mua_client_restrictions"]
    )
    assert again.changes == {}


def test_parameters_bad_input_fails_and_writes_nothing(postconf, config):
    before = config.snapshot()
    ret = postconf.parameters(name="main", params={"biff": "no", "smtpd_banner": "two\nlines"}, config_dir=str(config))
    assert ret.result is False
    assert "smtpd_banner" in ret.comment
    assert ret.changes == {}
    assert config.snapshot()["main.cf"][0] == before["main.cf"][0]
    assert config.snapshot() == before


def test_parameters_rolled_back_when_postfix_check_fails(postconf, config):
    before = config.snapshot()
    ret = postconf.parameters(name="main", params={"biff": "no", "inet_protocols": "bogus"}, config_dir=str(config))
    assert ret.result is False
    assert ret.changes == {}
    assert "inet_protocols" in ret.comment
    assert "main.cf restored" in ret.comment
    assert config.snapshot() == before  # bytes and timestamps


# --- master.cf ---------------------------------------------------------------


def test_service_present_test_mode_then_apply_then_no_changes(postconf, config, postconf_calls):
    kwargs = {
        "name": "submission/inet",
        "command": "smtpd",
        "private": "n",
        "chroot": "n",
        "options": SUBMISSION_OPTIONS,
        "config_dir": str(config),
    }
    before = config.snapshot()
    predicted = postconf.service_present(**kwargs, test=True)
    assert predicted.result is None
    assert predicted.changes["submission/inet"]["old"] is None
    assert config.snapshot() == before
    postconf_calls.reset()

    ret = postconf.service_present(**kwargs)
    assert ret.result is True, ret.comment
    assert ret.changes == predicted.changes
    assert config.postconf("-M", "submission/inet").split()[:8] == [
        "submission",
        "inet",
        "n",
        "-",
        "n",
        "-",
        "-",
        "smtpd",
    ]
    assert [call.split()[0] for call in postconf_calls()] == ["-M", "-d", "-M", "-M"]

    postconf_calls.reset()
    before = config.snapshot()
    again = postconf.service_present(**kwargs)
    assert again.result is True
    assert again.changes == {}
    assert postconf_calls() == ["-M"]
    assert config.snapshot() == before


def test_service_present_options_are_the_exact_set(postconf, config):
    common = {"name": "submission/inet", "command": "smtpd", "private": "n", "chroot": "n", "config_dir": str(config)}
    postconf.service_present(**common, options=SUBMISSION_OPTIONS)
    fewer = {"smtpd_sasl_auth_enable": "yes", "smtpd_tls_security_level": "encrypt"}
    ret = postconf.service_present(**common, options=fewer)
    assert ret.result is True, ret.comment
    assert ret.changes["submission/inet"]["new"]["options"] == fewer
    assert config.postconf("-P", "submission/inet").splitlines() == [
        "submission/inet/smtpd_sasl_auth_enable = yes",
        "submission/inet/smtpd_tls_security_level = encrypt",
    ]


def test_service_absent(postconf, config):
    ret = postconf.service_absent(name="uucp/unix", config_dir=str(config))
    assert ret.result is True, ret.comment
    assert ret.changes["uucp/unix"]["new"] is None
    assert "uucp" not in config.postconf("-M")
    assert postconf.service_absent(name="uucp/unix", config_dir=str(config)).changes == {}


def test_services_batch(postconf, config):
    services = {
        "submission/inet": {"private": "n", "chroot": "n", "command": "smtpd", "options": SUBMISSION_OPTIONS},
        "smtp/inet": {"private": "n", "chroot": "n", "maxproc": 50, "command": "smtpd"},
        "uucp/unix": {"enabled": False},
    }
    predicted = postconf.services(name="master", services=services, config_dir=str(config), test=True)
    assert predicted.result is None
    assert sorted(predicted.changes) == sorted(services)
    ret = postconf.services(name="master", services=services, config_dir=str(config))
    assert ret.result is True, ret.comment
    assert ret.changes == predicted.changes
    assert config.postconf("-F", "smtp/inet/process_limit") == "smtp/inet/process_limit = 50\n"
    assert postconf.services(name="master", services=services, config_dir=str(config)).changes == {}


def test_services_bad_input_fails_and_writes_nothing(postconf, config):
    before = config.snapshot()
    services = {"submission/inet": {"command": "smtpd", "options": {"smtpd_client_restrictions": "a, b"}}}
    ret = postconf.services(name="master", services=services, config_dir=str(config))
    assert ret.result is False
    assert "smtpd_client_restrictions" in ret.comment
    assert config.snapshot() == before


def test_services_rolled_back_when_postfix_check_fails(postconf, config):
    # with maillog_file set, `postfix check` insists on the postlog service
    before = config.snapshot()
    services = {
        "submission/inet": {"private": "n", "chroot": "n", "command": "smtpd", "options": SUBMISSION_OPTIONS},
        "postlog/unix-dgram": {"enabled": False},
    }
    ret = postconf.services(name="master", services=services, config_dir=str(config))
    assert ret.result is False
    assert ret.changes == {}
    assert "postlog" in ret.comment
    assert "master.cf restored" in ret.comment
    assert config.snapshot() == before  # bytes and timestamps


def test_service_absent_rolled_back_when_postfix_check_fails(postconf, config):
    before = config.snapshot()
    ret = postconf.service_absent(name="postlog/unix-dgram", config_dir=str(config))
    assert ret.result is False
    assert config.snapshot() == before  # bytes and timestamps


def test_default_config_dir_is_postfixs_own(postconf, config, monkeypatch):
    # postconf and postfix read MAIL_CONFIG when no -c is given: Postfix's own directory, here the sandbox
    monkeypatch.setenv("MAIL_CONFIG", str(config))
    before = config.snapshot()
    failed = postconf.parameters(name="main", params={"inet_protocols": "bogus"})
    assert failed.result is False
    assert config.snapshot() == before  # bytes and timestamps
    applied = postconf.parameters(name="main", params={"biff": "no"})
    assert applied.result is True, applied.comment
    assert config.postconf("-n", "biff") == "biff = no\n"


def test_parameters_extend_proxy_read_maps_with_proxied_maps(postconf, config):
    params = {"smtpd_data_restrictions": "check_sender_access proxy:pgsql:/etc/postfix/pgsql/senders.cf"}
    ret = postconf.parameters(name="main", params=params, config_dir=str(config), extend_proxy_read_maps=True)
    assert ret.result is True, ret.comment
    assert config.postconf("-h", "proxy_read_maps").split()[-1] == "$smtpd_data_restrictions"
    again = postconf.parameters(name="main", params=params, config_dir=str(config), extend_proxy_read_maps=True)
    assert again.result is True and again.changes == {}


def test_expected_fails_naming_what_the_installed_postfix_lacks(postconf, config):
    queue = config.postconf("-h", "queue_directory").strip()
    ok = postconf.expected(name="facts", known=["biff"], values={"queue_directory": queue}, config_dir=str(config))
    assert ok.result is True, ok.comment
    before = config.snapshot()
    ret = postconf.expected(name="facts", known=["virtual_mailbox_limit_maps"], values={"queue_directory": "/srv/q"},
                            reason="pillar postfix:quota:backend: vda needs the VDA patch", config_dir=str(config))
    assert ret.result is False
    assert ret.comment.startswith("pillar postfix:quota:backend: vda needs the VDA patch: ")
    assert "does not know virtual_mailbox_limit_maps" in ret.comment
    assert f"queue_directory is {queue!r}, not '/srv/q'" in ret.comment
    assert config.snapshot() == before


def test_parameters_prune_removes_what_it_set_before_and_nothing_else(postconf, config):
    config.postconf("-e", "delay_warning_time = 4h")  # set by someone else
    config.backdate()
    first = postconf.parameters(name="main", params={"biff": False, "message_size_limit": 1000},
                                config_dir=str(config), prune=True)
    assert first.result is True, first.comment
    ret = postconf.parameters(name="main", params={"biff": False}, config_dir=str(config), prune=True)
    assert ret.result is True, ret.comment
    assert ret.changes == {"message_size_limit": {"old": "1000", "new": None}}
    explicit = config.postconf("-n")
    assert "message_size_limit" not in explicit and "biff = no" in explicit and "delay_warning_time = 4h" in explicit
    assert postconf.parameters(name="main", params={"biff": False}, config_dir=str(config), prune=True).changes == {}


def test_parameters_prune_in_test_mode_predicts_the_removal(postconf, config):
    postconf.parameters(name="main", params={"message_size_limit": 1000}, config_dir=str(config), prune=True)
    before = config.snapshot()
    ret = postconf.parameters(name="main", params={}, config_dir=str(config), prune=True, test=True)
    assert ret.result is None and ret.changes == {"message_size_limit": {"old": "1000", "new": None}}
    assert config.snapshot() == before


def test_services_prune_removes_a_service_dropped_from_the_list(postconf, config):
    spec = {"command": "smtpd", "options": SUBMISSION_OPTIONS}
    first = postconf.services(name="master", services={"submission/inet": spec, "2525/inet": spec},
                              config_dir=str(config), prune=True)
    assert first.result is True, first.comment
    ret = postconf.services(name="master", services={"submission/inet": spec}, config_dir=str(config), prune=True)
    assert ret.result is True, ret.comment
    assert list(ret.changes) == ["2525/inet"]
    services = config.postconf("-M")
    assert "2525" not in services and "submission" in services and "pickup" in services
