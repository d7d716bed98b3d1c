"""Rendering needs no installed software: with Postfix's and Dovecot's tools
hidden (as on a bare minion), every sls of the formula renders from
pillar.example and test=True predicts without a failed state. (The fresh-host
tests apply it to a real bare Debian root filesystem.)"""

import shutil

import pytest

from tests.formula.conftest import PILLAR_EXAMPLE
from tests.harness.masterless import Masterless

#: the programs a bare minion does not have yet
HIDDEN = ("postconf", "postfix", "postmap", "postsuper", "postqueue", "doveadm", "dovecot", "doveconf")


def hiding(programs):
    """argv prefix: a private mount namespace in which PROGRAMS are /dev/null (not executable)."""
    binds = "; ".join(f'mount --bind /dev/null "{path}"' for path in filter(None, map(shutil.which, programs)))
    return ["unshare", "--mount", "sh", "-c", f'{binds}; exec "$@"', "bare-host"]


@pytest.fixture
def bare(formula_sandbox, sandbox_base, request):
    masterless = Masterless(sandbox_base / f"bare-{request.node.name[:30]}", wrapper=hiding(HIDDEN)).write_config()
    formula_sandbox.masterless = masterless
    return formula_sandbox


def test_the_hiding_leaves_salt_without_the_postfix_modules(bare):
    for module in ("postconf", "postfix"):
        rc, functions, _ = bare.masterless.salt_call("sys.list_functions", module)
        assert rc == 0 and functions == [], f"the {module} module loads although Postfix is hidden"


@pytest.mark.parametrize("sls", ["postfix", "postfix.clean", "postfix.dovecot", "postfix.quota", "postfix.relay"])
def test_every_sls_renders_without_postfix(bare, sls):
    bare.masterless.set_pillar(PILLAR_EXAMPLE, {"postfix": {"relay": {"enabled": True}}}, bare.overlay)
    rc, output, stderr = bare.masterless.salt_call("state.show_sls", sls)
    assert rc == 0 and isinstance(output, dict), f"{sls} does not render without Postfix: {output}"


def test_test_mode_without_postfix_predicts_and_fails_nothing(bare):
    before = {path: path.read_bytes() for path in bare.instance.config_dir.iterdir() if path.is_file()}
    rc, result = bare.apply(PILLAR_EXAMPLE, test=True)
    assert isinstance(result, dict), f"salt-call failed: {result}"
    failed = {key: value["comment"] for key, value in result.items() if value["result"] is False}
    assert not failed
    main_cf = next(value for key, value in result.items() if "postfix-config-main-cf" in key)
    assert main_cf["result"] is None and "smtpd_banner" in main_cf["changes"]
    assert {path: path.read_bytes() for path in bare.instance.config_dir.iterdir() if path.is_file()} == before


def test_a_catch_all_alias_renders(bare):
    """A catch-all's key starts with @, which YAML reserves: the sls must quote it."""
    catch_all = {"postfix": {"postfixadmin": {"aliases": {"@example.com": {"goto": ["postmaster@example.com"]}}}}}
    bare.masterless.set_pillar(PILLAR_EXAMPLE, catch_all, bare.overlay)
    rc, output, _ = bare.masterless.salt_call("state.show_sls", "postfix.postfixadmin")
    assert rc == 0 and isinstance(output, dict), output
    state = output["postfix-postfixadmin-alias-@example.com"]["postfixadmin"]
    assert "alias_present" in state and {"name": "@example.com"} in state, state
