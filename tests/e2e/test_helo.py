"""R4: HELO restrictions as a connecting client sees them.

The document's table, row by row: each row's restriction alone on an smtpd
service of its own (master.cf -o), the HELO names by column. Its three lists
on port 25: the `strict` preset (pillar.example), the same list written in
the document's old names (the formula translates them), `safe` and
`mynetworks`; permit_sasl_authenticated letting an authenticated client
through with a bad HELO; HELO being required.

Postfix checks HELO restrictions at RCPT time (smtpd_delay_reject), so the
verdict is read from the RCPT TO reply.
"""

import pytest

from tests.e2e import mail
from tests.e2e.topology import ALICE as USER
from tests.e2e.topology import RESOLVABLE_HELO

SUBMISSION = 587

BOGUS = "bogus..name"  # syntactically invalid (empty label)
SINGLE_LABEL = "example"
IP = "192.0.23.58"  # a naked IP address, as in the document
UNRESOLVABLE = "nohost.example.test"  # fully qualified, but the zone has no record for it
COLUMNS = (BOGUS, SINGLE_LABEL, RESOLVABLE_HELO, IP)

#: the document's table in its own (pre-2.3) restriction names; X rejected, O accepted.
#: Its "?" (example.com depends on DNS) is O here: the test zone resolves example.com.
DOCUMENT_TABLE = {
    "reject_invalid_hostname": "XOOO",
    "reject_non_fqdn_hostname": "XXOO",
    "reject_unknown_hostname": "XXOX",
}
#: where Postfix 3.x differs from the document: a naked IP is not a fully-qualified
#: *host name* (only the address literal [192.0.23.58] passes reject_non_fqdn_helo_hostname)
POSTFIX_3_DIFFERENCES = {("reject_non_fqdn_hostname", IP): "X"}
TODAYS_NAME = {
    "reject_invalid_hostname": "reject_invalid_helo_hostname",
    "reject_non_fqdn_hostname": "reject_non_fqdn_helo_hostname",
    "reject_unknown_hostname": "reject_unknown_helo_hostname",
}
ROW_PORTS = {"reject_invalid_hostname": 2501, "reject_non_fqdn_hostname": 2502, "reject_unknown_hostname": 2503}
#: the document's recommended list, word for word
DOCUMENT_LIST = ["permit_sasl_authenticated", "reject_invalid_hostname", "reject_unknown_hostname",
                 "reject_non_fqdn_hostname"]
#: verdicts of the recommended list for COLUMNS + UNRESOLVABLE, for a client outside mynetworks
STRICT_VERDICTS = ["X", "X", "O", "X", "X"]


def row_services(address):
    """One smtpd per table row, on its own port with only that row's restriction (SASL on, to show
    that a list without permit_sasl_authenticated turns away even authenticated clients)."""
    return {
        f"{address}:{port}/inet": {
            "private": "n", "chroot": "n", "command": "smtpd",
            "options": {
                "smtpd_helo_restrictions": TODAYS_NAME[row],
                "smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot", "smtpd_sasl_path": "private/auth",
            },
        }
        for row, port in ROW_PORTS.items()
    }


def expected(row, column_index):
    helo = COLUMNS[column_index]
    return POSTFIX_3_DIFFERENCES.get((row, helo), DOCUMENT_TABLE[row][column_index])


def verdict(site, helo, port=25, source=mail.CLIENT_ADDRESS):
    """'O' if RCPT is accepted after HELO, 'X' if the HELO check rejects it."""
    code, text = mail.rcpt_reply(site.address, USER.address, helo=helo, port=port, source=source)
    if code == 250:
        return "O"
    assert "Helo command rejected" in text, f"refused for another reason: {code} {text}"
    assert 400 <= code < 600
    return "X"


def verdicts(site, source=mail.CLIENT_ADDRESS):
    return [verdict(site, helo, source=source) for helo in (*COLUMNS, UNRESOLVABLE)]


def test_strict_preset(primary):
    assert verdicts(primary) == STRICT_VERDICTS


def test_helo_is_required(primary):
    with mail.session(primary.address) as (smtp, _):
        code, text = mail.reply(smtp.docmd("MAIL", f"FROM:<{mail.SENDER}>"))
    assert code == 503, text
    assert "send HELO/EHLO first" in text


@pytest.fixture
def site(primary_host, primary_pillar):
    """The primary with the document's list in its old names on port 25, and one smtpd per table row."""
    return primary_host.configure(*primary_pillar, {"hardening": {"helo_restrictions": DOCUMENT_LIST},
                                                    "master": row_services(primary_host.address)})


@pytest.mark.parametrize("row", sorted(DOCUMENT_TABLE))
def test_document_table_row(site, row):
    seen = "".join(verdict(site, helo, port=ROW_PORTS[row]) for helo in COLUMNS)
    wanted = "".join(expected(row, index) for index in range(len(COLUMNS)))
    assert seen == wanted, f"{row} over {COLUMNS}"


def test_unknown_hostname_depends_on_dns(site):
    """The table's '?': a fully-qualified name passes reject_unknown_hostname only if DNS knows it."""
    port = ROW_PORTS["reject_unknown_hostname"]
    assert verdict(site, RESOLVABLE_HELO, port=port) == "O"
    assert verdict(site, UNRESOLVABLE, port=port) == "X"


def test_document_list_in_old_names_works_like_strict(site):
    assert verdicts(site) == STRICT_VERDICTS


def test_permit_sasl_authenticated_lets_an_authenticated_client_through_a_bad_helo(site):
    def authenticated_rcpt(port):
        with mail.session(site.address, port) as (smtp, _):
            smtp.ehlo(BOGUS)
            if smtp.has_extn("starttls"):
                smtp.starttls(context=mail.client_tls_context())
                smtp.ehlo(BOGUS)
            assert mail.reply(smtp.login(USER.address, USER.password))[0] == 235
            assert mail.reply(smtp.mail(USER.address))[0] == 250
            return mail.reply(smtp.rcpt(USER.address))

    # the list starts with permit_sasl_authenticated; the submission service inherits it from main.cf
    assert authenticated_rcpt(SUBMISSION)[0] == 250
    # the same client against reject_invalid_hostname alone is turned away
    code, text = authenticated_rcpt(ROW_PORTS["reject_invalid_hostname"])
    assert code == 501 and "Helo command rejected" in text, f"{code} {text}"


@pytest.fixture
def safe_site(primary_host, primary_pillar):
    return primary_host.configure(*primary_pillar, {"hardening": {"helo_restrictions": "safe"}})


def test_safe_preset(safe_site):
    """For hosts without proper DNS names: naked IPs and any well-formed name pass, invalid names do not."""
    assert verdicts(safe_site) == ["X", "O", "O", "O", "O"]


@pytest.fixture
def mynetworks_site(primary_host, primary_pillar):
    return primary_host.configure(*primary_pillar, {"hardening": {"helo_restrictions": "mynetworks"}})


def test_mynetworks_preset(mynetworks_site):
    """Own hosts (mynetworks = 127.0.0.1/32) may use any HELO; everyone else gets the strict checks."""
    assert verdicts(mynetworks_site, source="127.0.0.1") == ["O"] * 5
    assert verdicts(mynetworks_site) == STRICT_VERDICTS
