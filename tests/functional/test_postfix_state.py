"""postfix.running and its mod_watch against real sandboxed Postfix instances."""

import os
import pathlib
import smtplib
import socket
import time

import pytest

from tests.harness import salt_modules

#: outside the addresses postfix_factory hands out
MOVED_ADDRESS = "127.0.0.36"
UNREACHABLE_ADDRESS = "10.9.9.9"


def edit_main_cf(instance, *postconf_args):
    """postconf -e/-X on INSTANCE, then age main.cf: Postfix tools stall until main.cf is ~2 s old."""
    instance.postconf(*postconf_args)
    then = time.time() - 10
    os.utime(instance.config_dir / "main.cf", (then, then))


@pytest.fixture
def started(states, postfix_sandbox):
    """An instance started by postfix.running, so the state knows what it started with."""
    ret = states.postfix.running(name="postfix", config_dir=str(postfix_sandbox.config_dir))
    assert ret.result is True, ret.comment
    return postfix_sandbox


def watch(states, instance, test=False):
    return states.postfix.mod_watch(name="postfix", sfun="running", config_dir=str(instance.config_dir), test=test)


def banner(address):
    """The greeting of a NEW SMTP connection to ADDRESS:25."""
    with smtplib.SMTP(timeout=10) as smtp:
        return smtp.connect(address, 25)[1].decode()


def listening(address):
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, 25)) == 0


def master_pid(instance):
    return int((instance.queue_dir / "pid" / "master.pid").read_text())


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_running_starts_a_stopped_instance_then_changes_nothing(states, postfix_sandbox):
    config_dir = str(postfix_sandbox.config_dir)
    ret = states.postfix.running(name="postfix", config_dir=config_dir)
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "stopped", "new": "running"}}
    assert postfix_sandbox.status()
    assert banner(postfix_sandbox.address).startswith(postfix_sandbox.hostname)
    pid = master_pid(postfix_sandbox)

    again = states.postfix.running(name="postfix", config_dir=config_dir)
    assert again.result is True
    assert again.changes == {}
    assert master_pid(postfix_sandbox) == pid


def test_running_in_test_mode_only_says_it_would_start(states, postfix_sandbox):
    ret = states.postfix.running(name="postfix", config_dir=str(postfix_sandbox.config_dir), test=True)
    assert ret.result is None
    assert "would be started" in ret.comment
    assert ret.changes == {"postfix": {"old": "stopped", "new": "running"}}
    assert not postfix_sandbox.status()


def test_running_fails_with_the_reason_when_postfix_cannot_start(states, postfix_sandbox):
    with socket.create_server((postfix_sandbox.address, 25)):
        ret = states.postfix.running(name="postfix", config_dir=str(postfix_sandbox.config_dir))
    assert ret.result is False
    assert "Address already in use" in ret.comment


def test_watch_reloads_and_a_new_connection_gets_the_new_banner(states, started):
    pid = master_pid(started)
    old_banner = banner(started.address)  # leaves an idle smtpd that keeps the old configuration
    edit_main_cf(started, "-e", "smtpd_banner = $myhostname ESMTP reloaded by salt")
    assert banner(started.address) == old_banner, "without a reload the idle smtpd answers"
    ret = watch(states, started)
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "running", "new": "reloaded"}}
    assert banner(started.address) == f"{started.hostname} ESMTP reloaded by salt"
    assert master_pid(started) == pid, "a reload keeps the master process"


def test_watch_restarts_when_inet_interfaces_moves(states, started):
    old_address = started.address
    pid = master_pid(started)
    edit_main_cf(started, "-e", f"inet_interfaces = {MOVED_ADDRESS}", f"smtp_bind_address = {MOVED_ADDRESS}")
    ret = watch(states, started)
    assert ret.result is True, ret.comment
    assert ret.changes == {
        "postfix": {"old": "running", "new": "restarted"},
        "inet_interfaces": {"old": old_address, "new": MOVED_ADDRESS},
    }
    assert "inet_interfaces changed" in ret.comment
    assert started.status()
    assert master_pid(started) != pid
    assert banner(MOVED_ADDRESS).startswith(started.hostname)
    assert not listening(old_address)

    started.address = MOVED_ADDRESS  # the harness stops what listens here
    edit_main_cf(started, "-e", "smtpd_banner = $myhostname ESMTP after the move")
    assert watch(states, started).changes == {"postfix": {"old": "running", "new": "reloaded"}}, \
        "the restart recorded the new inet_interfaces"


def test_watch_without_a_record_restarts_to_be_safe(states, postfix_sandbox):
    instance = postfix_sandbox.start()  # started behind the state's back
    pid = master_pid(instance)
    ret = watch(states, instance)
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "running", "new": "restarted"}}
    assert "no record" in ret.comment
    assert master_pid(instance) != pid
    assert listening(instance.address)


@pytest.fixture
def broken(started):
    """STARTED with a main.cf that fails `postfix check`; repaired afterwards so the harness can stop it.

    A connection first leaves an idle smtpd with the good configuration: only a reload would end it.
    """
    banner(started.address)
    edit_main_cf(started, "-e", f"inet_interfaces = {UNREACHABLE_ADDRESS}", "smtpd_banner = $myhostname ESMTP broken")
    yield started
    edit_main_cf(started, "-e", f"inet_interfaces = {started.address}")


def test_watch_with_a_broken_configuration_fails_and_keeps_postfix_running(states, started, broken):
    ret = watch(states, broken)
    assert ret.result is False
    assert f"no local interface found for {UNREACHABLE_ADDRESS}" in ret.comment
    assert ret.changes == {}
    assert process_alive(master_pid(broken)), "Postfix still runs (postfix status itself fails on this main.cf)"
    assert banner(broken.address) == f"{broken.hostname} ESMTP Postfix"


@pytest.fixture
def fatal_on_reload(started):
    """STARTED with a main.cf that passes `postfix check` but kills the master when it re-reads it."""
    edit_main_cf(started, "-e", "service_throttle_time = soon")
    yield started
    edit_main_cf(started, "-X", "service_throttle_time")


def test_postfix_killed_by_a_reload_runs_again_on_the_last_good_configuration(states, modules, fatal_on_reload):
    pid = master_pid(fatal_on_reload)
    ret = watch(states, fatal_on_reload)
    assert ret.result is False, "never success when the new configuration killed Postfix"
    assert "invalid service_throttle_time" in ret.comment
    assert "put back to the last configuration Postfix served on" in ret.comment
    assert not process_alive(pid) or is_zombie(pid)
    assert modules.postfix.status(config_dir=str(fatal_on_reload.config_dir)) is True
    assert banner(fatal_on_reload.address).startswith(fatal_on_reload.hostname)
    assert "service_throttle_time" not in (fatal_on_reload.config_dir / "main.cf").read_text()
    rejected = pathlib.Path(ret.comment.rsplit(" ", 1)[1]) / "main.cf"
    assert "service_throttle_time = soon" in rejected.read_text()


def test_failed_start_of_a_restart_falls_back_to_the_last_good_configuration(states, started):
    old_address = started.address
    edit_main_cf(started, "-e", f"inet_interfaces = {MOVED_ADDRESS}", f"smtp_bind_address = {MOVED_ADDRESS}")
    with socket.create_server((MOVED_ADDRESS, 25)):
        ret = watch(states, started)
    assert ret.result is False
    assert "Address already in use" in ret.comment
    assert "put back to the last configuration Postfix served on" in ret.comment
    assert started.postconf("-h", "inet_interfaces").strip() == old_address
    assert banner(old_address).startswith(started.hostname)


def is_zombie(pid):
    return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_watch_in_test_mode_changes_nothing(states, started):
    pid = master_pid(started)
    old_banner = banner(started.address)
    edit_main_cf(started, "-e", "smtpd_banner = $myhostname ESMTP not yet")
    missing = started.queue_dir / "corrupt"
    missing.rmdir()  # `postfix check` would create it again
    ret = watch(states, started, test=True)
    assert not missing.exists(), "test mode runs nothing that writes"
    assert ret.result is None
    assert ret.comment.startswith("Postfix would be reloaded: main.cf or master.cf changed")
    assert ret.changes == {"postfix": {"old": "running", "new": "reloaded"}}
    assert master_pid(started) == pid
    assert banner(started.address) == old_banner


def test_watch_in_test_mode_predicts_a_restart(states, started):
    edit_main_cf(started, "-e", "inet_protocols = all")
    ret = watch(states, started, test=True)
    assert ret.result is None
    assert ret.changes["inet_protocols"] == {"old": "ipv4", "new": "all"}
    assert "would be restarted: inet_protocols changed" in ret.comment
    assert started.postconf("-h", "inet_protocols").strip() == "all"
    assert listening(started.address)


def test_watch_starts_a_stopped_instance(states, postfix_sandbox):
    ret = watch(states, postfix_sandbox)
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "stopped", "new": "running"}}
    assert postfix_sandbox.status()


def test_salt_call_reloads_through_a_watch_requisite(masterless, postfix_sandbox):
    """The whole path: a state run where postfix.running watches a change."""
    config_dir = postfix_sandbox.config_dir
    postfix_sandbox.start()
    sls = f"""
banner:
  cmd.run:
    - name: postconf -c {config_dir} -e 'smtpd_banner = $myhostname ESMTP by salt-call'
postfix:
  postfix.running:
    - config_dir: {config_dir}
    - watch:
      - cmd: banner
"""
    rc, result = masterless.salt_call("state.template_str", sls)[:2]
    assert rc == 0, result
    postfix_ret = next(value for key, value in result.items() if key.startswith("postfix_|-"))
    assert postfix_ret["result"] is True, postfix_ret
    assert postfix_ret["changes"]["postfix"]["new"] == "restarted"  # no record yet: a safe restart
    assert banner(postfix_sandbox.address) == f"{postfix_sandbox.hostname} ESMTP by salt-call"


@pytest.mark.parametrize("state", ["postconf", "postfix", "postfix_queue"])
def test_states_load_before_postfix_is_installed(state):
    """On a bare minion the package state installs Postfix in the same run: the
    states must be there from the start (they fail or predict when called early)."""
    module = salt_modules.load("states", state)
    module.__salt__ = {}
    assert module.__virtual__() == state


def test_running_without_postfix_predicts_in_test_mode_and_fails_otherwise():
    module = salt_modules.load("states", "postfix")
    module.__salt__ = {}
    module.__opts__ = {"test": True}
    ret = module.running(name="postfix")
    assert ret["result"] is None and ret["changes"] == {"postfix": {"old": "not installed", "new": "running"}}
    module.__opts__ = {"test": False}
    ret = module.running(name="postfix")
    assert ret["result"] is False and "is Postfix installed?" in ret["comment"]


# --- owed reloads and proven ones -------------------------------------------


def test_a_reload_owed_by_an_earlier_run_is_paid_by_the_next(states, started):
    """main.cf changed but the run that changed it died before the reload: no watch
    fires in the next run, yet running() sees main.cf differs from what Postfix serves."""
    edit_main_cf(started, "-e", "smtpd_banner = $myhostname ESMTP owed")
    ret = states.postfix.running(name="postfix", config_dir=str(started.config_dir))
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "running", "new": "reloaded"}}
    assert "main.cf or master.cf changed" in ret.comment
    assert banner(started.address) == f"{started.hostname} ESMTP owed"
    again = states.postfix.running(name="postfix", config_dir=str(started.config_dir))
    assert again.result is True and again.changes == {}


def test_a_changed_config_file_owes_a_reload(states, started, tmp_path):
    table = tmp_path / "table.cf"
    table.write_text("query = SELECT 1\n")
    first = states.postfix.running(name="postfix", config_dir=str(started.config_dir), config_files=[str(table)])
    assert first.result is True and first.changes["postfix"]["new"] == "reloaded", "first sight of the file"
    assert states.postfix.running(name="postfix", config_dir=str(started.config_dir),
                                  config_files=[str(table)]).changes == {}
    table.write_text("query = SELECT 2\n")
    ret = states.postfix.running(name="postfix", config_dir=str(started.config_dir), config_files=[str(table)])
    assert ret.changes == {"postfix": {"old": "running", "new": "reloaded"}}
    assert str(table) in ret.comment


def test_the_digests_of_password_holding_files_are_kept_unreadable_to_others(states, loaders, started, tmp_path):
    """An unsalted digest of a lookup table whose only unknown is its password would let a guess be checked."""
    table = tmp_path / "table.cf"
    table.write_text("password = guessable\n")
    assert states.postfix.running(name="postfix", config_dir=str(started.config_dir),
                                  config_files=[str(table)]).result is True
    kept = [path for path in (pathlib.Path(loaders.opts["cachedir"]) / "postfix" / "known-good").glob("*/files.json")
            if str(table) in path.read_text()]
    assert len(kept) == 1
    assert kept[0].stat().st_mode & 0o777 == 0o600 and kept[0].parent.stat().st_mode & 0o777 == 0o700


def test_a_reload_that_leaves_smtp_dead_is_rolled_back(states, started):
    """`postfix check` passes and the master takes the reload, but smtpd cannot run
    the new main.cf: the state fails with smtpd's own message and Postfix serves
    on the last configuration it served on."""
    edit_main_cf(started, "-e", "smtpd_tls_security_level = bogus", "smtpd_banner = $myhostname ESMTP bogus")
    ret = watch(states, started)
    assert ret.result is False
    assert "does not serve" in ret.comment and "smtpd/inet" in ret.comment.replace("smtp/inet", "smtpd/inet")
    assert "put back to the last configuration Postfix served on" in ret.comment
    assert "smtpd_tls_security_level" not in (started.config_dir / "main.cf").read_text()
    assert banner(started.address) == f"{started.hostname} ESMTP Postfix"
    again = states.postfix.running(name="postfix", config_dir=str(started.config_dir))
    assert again.result is True and again.changes == {}, "the rolled back configuration is the proven one"


# --- one postfix check per run, reloads proven without a fixed wait ----------


def postfix_check_counter(tmp_path, monkeypatch):
    """A `postfix` first on PATH that logs its arguments and runs the real one:
    count() is how many `postfix check` runs happened since."""
    log = tmp_path / "postfix-calls.log"
    wrapper_dir = tmp_path / "postfix-bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "postfix"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec /usr/sbin/postfix "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")
    return lambda: sum(1 for line in (log.read_text().splitlines() if log.exists() else ()) if line.endswith("check"))


def watched_sls(config_dir, params):
    return f"""
main-cf:
  postconf.parameters:
    - params: {params!r}
    - config_dir: {config_dir}
master-cf:
  postconf.services:
    - services: {{"submission/inet": {{"private": "n", "chroot": "n", "command": "smtpd"}}}}
    - config_dir: {config_dir}
    - require:
      - postconf: main-cf
postfix:
  postfix.running:
    - config_dir: {config_dir}
    - watch:
      - postconf: main-cf
      - postconf: master-cf
"""


def by_state(result, prefix):
    return next(value for key, value in result.items() if key.startswith(prefix))


def test_a_run_checks_its_configuration_once_before_the_reload(masterless, postfix_sandbox, tmp_path, monkeypatch):
    """main.cf and master.cf both change; the postconf states leave `postfix check` to
    the postfix.running state that watches them: one check for the run."""
    config_dir = postfix_sandbox.config_dir
    postfix_sandbox.start()
    checks = postfix_check_counter(tmp_path, monkeypatch)
    sls = watched_sls(config_dir, {"smtpd_banner": "$myhostname ESMTP checked once"})
    rc, result = masterless.salt_call("state.template_str", sls)[:2]
    assert rc == 0, result
    assert "by the postfix.running state" in by_state(result, "postconf_|-main-cf")["comment"]
    assert by_state(result, "postconf_|-master-cf")["changes"]
    assert by_state(result, "postfix_|-")["result"] is True
    assert checks() == 1
    assert banner(postfix_sandbox.address) == f"{postfix_sandbox.hostname} ESMTP checked once"


def test_a_rejected_edit_is_put_back_by_the_watching_check(masterless, postfix_sandbox):
    """The one check of the run rejects main.cf: main.cf and master.cf are put back
    byte-identical before anything reloads, and Postfix keeps serving."""
    config_dir = postfix_sandbox.config_dir
    postfix_sandbox.start()
    files = [config_dir / "main.cf", config_dir / "master.cf"]
    before = {path: (path.read_bytes(), path.stat().st_mode, path.stat().st_mtime_ns) for path in files}
    pid = master_pid(postfix_sandbox)
    sls = watched_sls(config_dir, {"inet_interfaces": UNREACHABLE_ADDRESS})
    rc, result = masterless.salt_call("state.template_str", sls)[:2]
    assert rc != 0, result
    postfix_ret = by_state(result, "postfix_|-")
    assert postfix_ret["result"] is False
    assert f"no local interface found for {UNREACHABLE_ADDRESS}" in postfix_ret["comment"]
    assert "main.cf and master.cf restored as they were before the edit" in postfix_ret["comment"]
    assert {path: (path.read_bytes(), path.stat().st_mode, path.stat().st_mtime_ns) for path in files} == before
    assert master_pid(postfix_sandbox) == pid
    assert banner(postfix_sandbox.address) == f"{postfix_sandbox.hostname} ESMTP Postfix"


def test_an_edit_left_unchecked_by_a_killed_run_is_checked_by_the_next(states, started):
    """postconf.parameters with check: false, and the run dies before postfix.running:
    the next postfix.running checks first and puts the rejected main.cf back."""
    main_cf = started.config_dir / "main.cf"
    before = main_cf.read_bytes()
    ret = states.postconf.parameters(name="main", params={"inet_interfaces": UNREACHABLE_ADDRESS},
                                     config_dir=str(started.config_dir), check=False)
    assert ret.result is True and ret.changes, ret.comment
    assert main_cf.read_bytes() != before
    again = states.postfix.running(name="postfix", config_dir=str(started.config_dir))
    assert again.result is False
    assert "main.cf restored as it was" in again.comment
    assert main_cf.read_bytes() == before
    assert states.postfix.running(name="postfix", config_dir=str(started.config_dir)).changes == {}
    assert banner(started.address) == f"{started.hostname} ESMTP Postfix"


def test_a_reload_without_maillog_is_proven_by_the_master_renewing_its_children(states, started):
    """Without maillog_file the reload counts once the master replaced qmgr/pickup,
    not after a fixed wait."""
    edit_main_cf(started, "-X", "maillog_file")
    assert states.postfix.running(name="postfix", config_dir=str(started.config_dir)).result is True
    edit_main_cf(started, "-e", "smtpd_banner = $myhostname ESMTP no maillog")
    began = time.monotonic()
    ret = states.postfix.running(name="postfix", config_dir=str(started.config_dir))
    took = time.monotonic() - began
    assert ret.result is True, ret.comment
    assert ret.changes == {"postfix": {"old": "running", "new": "reloaded"}}, "a reload owed"
    assert banner(started.address) == f"{started.hostname} ESMTP no maillog"
    from_state = salt_modules.load("states", "postfix")
    assert took < from_state.RELOAD_SETTLE_SECONDS, f"the reload took {took:.2f}s"


def test_a_reload_without_maillog_that_kills_postfix_is_rolled_back(states, modules, fatal_on_reload):
    """Without maillog_file, a master that dies on the new configuration never
    replaces its children: the reload is not taken, the known-good one is put back."""
    edit_main_cf(fatal_on_reload, "-X", "maillog_file")
    ret = watch(states, fatal_on_reload)
    assert ret.result is False, "never success when the new configuration killed Postfix"
    assert "put back to the last configuration Postfix served on" in ret.comment
    assert modules.postfix.status(config_dir=str(fatal_on_reload.config_dir)) is True
    assert banner(fatal_on_reload.address).startswith(fatal_on_reload.hostname)
    assert "service_throttle_time" not in (fatal_on_reload.config_dir / "main.cf").read_text()
