"""pillar.example (adapted to the host's address) on a bare Debian 12 host:
test=True predicts without failing or writing, ONE state.apply installs,
configures and starts everything and mail flows, the second apply changes
nothing."""

import pytest
import yaml

from tests.fresh.conftest import ADDRESSES, assert_no_failures
from tests.fresh.mail import PILLAR_EXAMPLE, banner, submit_and_read
from tests.harness.fresh_host import formula_packages
from tests.harness.masterless import changed_states

#: what the first apply installs and writes (pillar.example enables Dovecot)
EXAMPLE = yaml.safe_load(PILLAR_EXAMPLE.read_text())["postfix"]
PACKAGES = [*EXAMPLE["lookup"]["pkgs"], *EXAMPLE["dovecot"]["packages"]]
WRITTEN = ["/etc/postfix/main.cf", "/etc/dovecot/dovecot.conf", "/etc/dovecot/dovecot-sql.conf.ext"]


@pytest.fixture(scope="module")
def site(make_site):
    return make_site(ADDRESSES[0])


@pytest.fixture(scope="module")
def predicted(site):
    """test=True on the bare host, and what the host holds afterwards."""
    rc, result = site.apply(test=True)
    after = {"installed": [p for p in PACKAGES if site.host.installed(p)],
             "written": [f for f in WRITTEN if (site.host.root / f.lstrip("/")).exists()]}
    return rc, result, after


@pytest.fixture(scope="module")
def first_apply(site, predicted):
    return site.apply_ok()


@pytest.fixture(scope="module")
def second_apply(site, first_apply):
    return site.apply_ok()


def by_id(result):
    assert isinstance(result, dict), f"salt-call failed: {str(result)[:3000]}"
    return {value["__id__"]: value for value in result.values()}


def test_the_image_holds_none_of_the_formulas_packages(site):
    assert [p for p in formula_packages() if site.host.installed(p)] == []


def test_test_mode_on_a_bare_host_fails_nothing(predicted):
    rc, result, _ = predicted
    assert isinstance(result, dict), f"test=True did not render: {str(result)[:3000]}"
    assert_no_failures(result)
    assert rc == 0


def test_test_mode_predicts_the_packages(predicted):
    _, result, _ = predicted
    states = by_id(result)
    for state_id in ("postfix-package-installed", "postfix-dovecot-package-installed"):
        assert states[state_id]["result"] is None, states[state_id]
    comments = " ".join(states[s]["comment"] for s in ("postfix-package-installed", "postfix-dovecot-package-installed"))
    assert [p for p in PACKAGES if p not in comments] == []


def test_test_mode_predicts_the_files(predicted):
    _, result, _ = predicted
    states = by_id(result)
    for state_id, path in (("postfix-dovecot-config-file-managed", "/etc/dovecot/dovecot.conf"),
                           ("postfix-dovecot-sql-file-managed", "/etc/dovecot/dovecot-sql.conf.ext")):
        assert states[state_id]["result"] is None, states[state_id]
        assert path in states[state_id]["comment"] + str(states[state_id]["changes"])
    main_cf = states["postfix-config-main-cf"]
    assert main_cf["result"] is None, main_cf
    assert "smtpd_banner" in str(main_cf["changes"]) + main_cf["comment"]
    stock = states["postfix-package-main-cf-present"]  # the package brings the stock main.cf
    assert stock["result"] is None and "/usr/share/postfix/main.cf.debian" in stock["comment"], stock


def test_test_mode_installs_and_writes_nothing(predicted):
    _, _, after = predicted
    assert after == {"installed": [], "written": []}


def test_one_apply_installs_everything(site, first_apply):
    assert [p for p in PACKAGES if not site.host.installed(p)] == []


def test_one_apply_answers_on_port_25_with_the_hardened_banner(site, first_apply):
    assert banner(site.host) == f"{site.host.hostname} ESMTP NO UCE"


def test_one_apply_takes_submission_and_delivers_into_the_maildir(site, first_apply):
    assert len(submit_and_read(site.host)) == 1


def test_second_apply_changes_nothing(second_apply):
    assert changed_states(second_apply) == {}
