"""Debian's "No configuration" install (postfix preinstalled, no main.cf),
then one state.apply postfix with pillar.example: a working mail server."""

import pytest

from tests.fresh.conftest import ADDRESSES
from tests.fresh.mail import banner, submit_and_read
from tests.harness.masterless import changed_states


@pytest.fixture(scope="module")
def site(make_site):
    site = make_site(ADDRESSES[1])
    site.host.run("debconf-set-selections", input="postfix postfix/main_mailer_type select No configuration\n")
    site.host.run("apt-get", "install", "-y", "-q", "postfix")
    return site


@pytest.fixture(scope="module")
def preinstalled(site):
    """What Debian left before the formula ran."""
    return {"main.cf": (site.host.root / "etc/postfix/main.cf").exists(), "postfix": site.host.installed("postfix")}


@pytest.fixture(scope="module")
def first_apply(site, preinstalled):
    return site.apply_ok()


def test_debian_left_postfix_without_main_cf(preinstalled):
    assert preinstalled == {"main.cf": False, "postfix": True}


def test_one_apply_writes_main_cf(site, first_apply):
    banner_setting = site.host.run("postconf", "-h", "smtpd_banner").stdout.strip()
    assert banner_setting == "$myhostname ESMTP NO UCE"


def test_one_apply_makes_a_working_mail_server(site, first_apply):
    assert banner(site.host) == f"{site.host.hostname} ESMTP NO UCE"
    assert len(submit_and_read(site.host)) == 1


def test_second_apply_changes_nothing(site, first_apply):
    assert changed_states(site.apply_ok()) == {}
