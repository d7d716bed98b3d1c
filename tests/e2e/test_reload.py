"""R13: a pillar change reaches clients after a re-apply, with no manual restart."""

from tests.e2e import mail
from tests.e2e.polling import wait_until

NEW_BANNER = "$myhostname ESMTP changed by pillar"


def greeting(site):
    with mail.session(site.address) as (_, text):
        return text


def test_banner_change_is_seen_by_the_next_connection(primary, primary_pillar):
    assert greeting(primary) == f"{primary.hostname} ESMTP NO UCE"
    primary.configure(*primary_pillar, {"hardening": {"banner": NEW_BANNER}})
    assert primary.instance.status(), "Postfix must be running after the re-apply"
    expected = f"{primary.hostname} ESMTP changed by pillar"
    # a reload takes effect asynchronously: poll new connections for a few seconds
    assert wait_until(lambda: greeting(primary), lambda seen: seen == expected, timeout=5) == expected
