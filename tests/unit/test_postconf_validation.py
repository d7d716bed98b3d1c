"""The postconf module's pure logic: parsing postconf's output, validating input
(_postconf_syntax, which postfix_records checks pillar with too), planning edits."""

import pytest
from salt.exceptions import SaltInvocationError

from tests.harness import salt_modules

postconf = salt_modules.load("modules", "postconf")
syntax = salt_modules.load("modules", "_postconf_syntax")

SUBMISSION = {
    "private": "n",
    "unpriv": "-",
    "chroot": "n",
    "wakeup": "-",
    "maxproc": "-",
    "command": "smtpd",
    "options": {"smtpd_sasl_auth_enable": "yes"},
}


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("smtpd -o a=b", ["smtpd", "-o", "a=b"]),
        ("  smtpd\t-o  a=b ", ["smtpd", "-o", "a=b"]),
        ("smtpd -o {a=b, c} x", ["smtpd", "-o", "{a=b, c}", "x"]),
        ("pipe argv=/bin/x {two words} ${user}", ["pipe", "argv=/bin/x", "{two words}", "${user}"]),
        ("x {a {b c} d} y", ["x", "{a {b c} d}", "y"]),
    ],
)
def test_tokens_keep_brace_groups_whole(text, tokens):
    assert syntax.tokenize(text) == tokens


def test_parse_service_splits_fields_command_and_options():
    line = "submission inet  n       -       n       -       -       smtpd -v -o syslog_name=postfix/submission -o {smtpd_client_restrictions=permit_sasl_authenticated, reject}"
    key, entry = postconf._parse_service(line)
    assert key == "submission/inet"
    assert entry == {
        "private": "n",
        "unpriv": "-",
        "chroot": "n",
        "wakeup": "-",
        "maxproc": "-",
        "command": "smtpd -v",
        "options": {
            "syslog_name": "postfix/submission",
            "smtpd_client_restrictions": "permit_sasl_authenticated, reject",
        },
    }


def test_parse_service_leaves_program_arguments_alone():
    line = "maildrop   unix  -       n       n       -       -       pipe -o a=1 flags=DRXhu user=vmail argv=/usr/bin/maildrop -o x -d ${recipient}"
    _, entry = postconf._parse_service(line)
    assert entry["command"] == "pipe flags=DRXhu user=vmail argv=/usr/bin/maildrop -o x -d ${recipient}"
    assert entry["options"] == {"a": "1"}


def test_split_daemon_arguments_reads_glued_and_grouped_options():
    options, others = syntax.split_daemon_arguments(["-v", "-oa=1", "-o", "{ b = 2 3 }", "-D", "x", "-o", "c=4"])
    assert options == {"a": "1", "b": "2 3"}
    assert others == ["-v", "-D", "x", "-o", "c=4"]


def test_parse_service_handles_unix_dgram():
    key, entry = postconf._parse_service("postlog    unix-dgram n  -       n       -       1       postlogd")
    assert key == "postlog/unix-dgram"
    assert (entry["private"], entry["maxproc"], entry["command"]) == ("n", "1", "postlogd")


def test_entry_line_puts_options_between_program_and_arguments():
    entry = {**SUBMISSION, "command": "pipe flags=R argv=/bin/x", "options": {"a": "1", "b": "2"}}
    assert postconf._entry_line("x/unix", entry) == "x unix n - n - - pipe -o a=1 -o b=2 flags=R argv=/bin/x"
    assert postconf._parse_service(postconf._entry_line("x/unix", entry)) == ("x/unix", entry)


def test_unused_main_parameters_come_from_postconf_warnings():
    stderr = (
        "postconf: warning: /etc/postfix/main.cf: unused parameter: mua_client_restrictions=permit_sasl_authenticated, reject\n"
        "postconf: warning: /etc/postfix/master.cf: unused parameter: x=y\n"
        "postconf: warning: foo: unknown parameter\n"
    )
    assert postconf._unused_main_parameters(stderr) == {"mua_client_restrictions": "permit_sasl_authenticated, reject"}


def test_name_value_lines_keep_empty_values():
    assert postconf._name_value_lines("relayhost =\nbiff = no\nsmtpd_banner = $myhostname ESMTP\n") == {
        "relayhost": "",
        "biff": "no",
        "smtpd_banner": "$myhostname ESMTP",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "yes"), (False, "no"), (20971520, "20971520"), (["a", "b"], "a, b"), ("  x  ", "x"), ([], "")],
)
def test_values_become_postfix_text(value, text):
    assert syntax.checked_value("parameter p", value) == text


def test_main_changes_ignore_whitespace_runs_and_report_removals():
    current = {"smtpd_banner": "$myhostname ESMTP NO UCE", "biff": "no"}
    wanted = {"smtpd_banner": "$myhostname ESMTP  NO UCE", "biff": None, "relayhost": None, "mynetworks": "127.0.0.0/8"}
    assert postconf._main_changes(wanted, current) == {
        "biff": {"old": "no", "new": None},
        "mynetworks": {"old": None, "new": "127.0.0.0/8"},
    }


def test_master_plan_uses_one_edit_list_per_kind():
    current = {
        "smtp/inet": {**SUBMISSION, "options": {"a": "1", "b": "2"}},
        "relay/unix": {**SUBMISSION, "command": "smtp"},
        "uucp/unix": {**SUBMISSION, "command": "pipe"},
    }
    wanted = {
        "smtp/inet": {**SUBMISSION, "maxproc": "50", "options": {"a": "9", "c": "3"}},
        "relay/unix": {**SUBMISSION, "command": "smtp -v"},
        "submission/inet": SUBMISSION,
        "uucp/unix": None,
        "gone/unix": None,
    }
    changes, edits = postconf._master_plan(wanted, current)
    assert sorted(changes) == ["relay/unix", "smtp/inet", "submission/inet", "uucp/unix"]
    assert edits == {
        "-M": [
            "relay/unix=relay unix n - n - - smtp -o smtpd_sasl_auth_enable=yes -v",
            "submission/inet=submission inet n - n - - smtpd -o smtpd_sasl_auth_enable=yes",
        ],
        "-F": ["smtp/inet/process_limit=50"],
        "-P": ["smtp/inet/a=9", "smtp/inet/c=3"],
        "-PX": ["smtp/inet/b"],
        "-MX": ["uucp/unix"],
    }


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"command": "smtpd", "private": "x"}, "private"),
        ({"command": "smtpd", "wakeup": "60s"}, "wakeup"),
        ({"command": "smtpd", "maxproc": "many"}, "maxproc"),
        ({"command": "smtpd -oa=b"}, "-o"),
        ({"command": "smtpd", "options": {"a": "b c"}}, "whitespace"),
        ({"command": "smtpd", "options": ["a=b"]}, "options"),
        ({"private": "n"}, "command"),
        ({"command": "smtpd", "chroot": "n\n"}, "chroot"),
        ({"command": "smtpd", "options": {"a\n": "b"}}, "name"),
    ],
)
def test_wanted_service_refuses_bad_specs(spec, named):
    with pytest.raises(SaltInvocationError, match=named):
        syntax.wanted_service("x/unix", spec)


@pytest.mark.parametrize("name", ["biff\n", "bad name", "-e", "", "a=b", 7])
def test_parameter_names_must_be_postfix_names(name):
    with pytest.raises(SaltInvocationError, match="invalid Postfix parameter name"):
        syntax.checked_name(name)


@pytest.mark.parametrize("key", ["submission", "a/b/c", "sub mission/inet", "submission/tcp", "x\n/inet", None])
def test_service_keys_are_name_and_type(key):
    with pytest.raises(SaltInvocationError, match="invalid master.cf service"):
        syntax.checked_service_key(key)


def test_wanted_service_defaults_and_normalises():
    entry = syntax.wanted_service(
        "x/unix", {"command": " pipe   flags=R ", "wakeup": 60, "options": {"a": ["b", "c"]}}
    )
    assert entry == {
        "private": "-",
        "unpriv": "-",
        "chroot": "-",
        "wakeup": "60",
        "maxproc": "-",
        "command": "pipe flags=R",
        "options": {"a": "b,c"},
    }
    assert syntax.wanted_service("x/unix", {"enabled": False}) is None
