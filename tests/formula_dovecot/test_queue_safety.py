"""postfix.performance.queue (R11, D6): a queue move refuses directories that
are not the queue's to take, never delivers an old queue's mail again, and a
salt-call killed at any step of it is finished by the next apply with every
message there once and SMTP working."""

import json
import os
import pathlib
import smtplib
import stat

import pytest

from tests.formula_dovecot.test_queue import DEFERRED_RECIPIENT, MOVED, held_message, held_messages, mount_options
from tests.harness.masterless import Masterless, changed_states
from tests.harness.procs import run

ALLOWED = "postfix_queue_|-postfix-performance-queue-target-allowed_|-{target}_|-target_allowed"
MARKER = "postfix-queue-move.json"


@pytest.fixture
def running_postfix(postfix_factory):
    return postfix_factory(address="127.0.0.32").start()


def queue_directory(instance):
    return instance.postconf("-h", "queue_directory").strip()


def mode_and_owner(path):
    status = path.stat()
    return stat.S_IMODE(status.st_mode), status.st_uid, status.st_gid


# --- refused targets ----------------------------------------------------------

#: target (a function of the instance) -> words of the refusal
REFUSED = {
    "root": (lambda instance: "/", "is a system directory"),
    "etc": (lambda instance: "/etc", "is a system directory"),
    "var-lib": (lambda instance: "/var/lib", "is a system directory"),
    "usr": (lambda instance: "/usr", "is a system directory"),
    "under-proc": (lambda instance: "/proc/queue", "is a system directory"),
    "ancestor-of-config-dir": (lambda instance: str(instance.base), "holds the configuration directory"),
    "inside-config-dir": (lambda instance: str(instance.config_dir / "queue"), "is inside the configuration directory"),
    "inside-current-queue": (lambda instance: str(instance.queue_dir / "deferred" / "q"),
                             "is inside the current queue"),
}


@pytest.mark.parametrize("case", REFUSED, ids=REFUSED.keys())
def test_system_and_enclosing_directories_are_refused(states, running_postfix, case):
    instance = running_postfix
    target, words = REFUSED[case]
    target = target(instance)
    before = mode_and_owner(pathlib.Path(target)) if os.path.exists(target) else None
    for state in (states.postfix_queue.target_allowed, states.postfix_queue.moved):
        ret = state(name=target, config_dir=str(instance.config_dir))
        assert ret.result is False and words in ret.comment, ret.comment
    assert queue_directory(instance) == str(instance.queue_dir)
    assert instance.status()
    if before:
        assert mode_and_owner(pathlib.Path(target)) == before


def test_a_non_empty_directory_that_is_no_queue_is_refused_before_the_mount(running_postfix, sandbox_base):
    """The directory is neither mounted over nor touched (mode, owners, contents)."""
    instance = running_postfix
    target = instance.base / "documents"
    target.mkdir(mode=0o750)
    (target / "private").mkdir(mode=0o755)
    (target / "report.txt").write_text("mine")
    image = instance.base / "queue.img"
    run(["truncate", "-s", "16M", str(image)])
    run(["mkfs.ext4", "-q", "-F", str(image)])
    before = {path: mode_and_owner(path) for path in (target, target / "private", target / "report.txt")}
    minion = Masterless(instance.base / "salt").write_config()
    minion.set_pillar({"postfix": {"config_dir": str(instance.config_dir), "performance": {"queue": {
        "directory": str(target), "device": str(image), "fstype": "ext4"}}}})
    rc, result = minion.apply("postfix.performance.queue")
    assert rc != 0
    comment = result[ALLOWED.format(target=target)]["comment"]
    assert "is not empty and not a Postfix queue (it holds report.txt)" in comment
    assert mount_options(target) is None
    assert {path: mode_and_owner(path) for path in before} == before
    assert (target / "report.txt").read_text() == "mine"
    assert queue_directory(instance) == str(instance.queue_dir)
    assert instance.status()


def test_a_queue_still_holding_mail_is_refused(states, running_postfix):
    """A copy of a queue with messages in it (not one this state retired) would deliver them again."""
    instance = running_postfix
    held_message(instance)
    target = instance.base / "old-copy"
    run(["cp", "-a", f"{instance.queue_dir}/.", str(target)])
    ret = states.postfix_queue.moved(name=str(target), config_dir=str(instance.config_dir))
    assert ret.result is False
    assert "still holds 1 queued files of an old queue (such as hold/" in ret.comment
    assert queue_directory(instance) == str(instance.queue_dir)
    assert instance.status()


# --- no old queue comes back ------------------------------------------------------


def test_moving_back_does_not_deliver_the_old_queue_again(states, running_postfix):
    instance = running_postfix
    config_dir = str(instance.config_dir)
    message = held_message(instance)
    first = instance.base / "fast-queue"

    ret = states.postfix_queue.moved(name=str(first), config_dir=config_dir)
    assert ret.result is True, ret.comment
    assert held_messages(instance) == [message]
    retired = list(instance.queue_dir.glob("retired-queue-*"))
    assert len(retired) == 1 and len(list((retired[0] / "hold").iterdir())) == 1, "the old copy is kept, retired"
    assert not (instance.queue_dir / "hold").exists()

    run(["postsuper", "-c", config_dir, "-d", "ALL"])  # the mail is gone (delivered, say) from the new queue
    assert held_messages(instance) == []

    ret = states.postfix_queue.moved(name=str(instance.queue_dir), config_dir=config_dir)
    assert ret.result is True, ret.comment
    assert queue_directory(instance) == str(instance.queue_dir)
    assert instance.status()
    assert held_messages(instance) == [], "the retired copy stays retired"
    assert held_message(instance, body="after the move back")["sender"] == "sender@example.org"
    assert len(held_messages(instance)) == 1


# --- killed moves --------------------------------------------------------------

#: where salt-call is killed: a wrapper of COMMAND first on PATH runs the real command (or, with a
#: third item, that bash line instead: "$real" is the command) and, when its arguments match the
#: bash test, SIGKILLs its parent (salt-call) once.
KILL_POINTS = {
    "after-postfix-stop": ("postfix", '"${@: -1}" == stop'),
    # cp -a -- SOURCE/. TARGET: only hold/ arrives, then the kill
    "during-cp": ("cp", '"$1" == -a', '"$real" -a -- "${3%/.}/hold" "$4/"'),
    "after-cp": ("cp", '"$1" == -a'),
    "after-queue-directory-set": ("postconf", '" $* " == *" -e queue_directory="*'),
    "after-set-permissions": ("postfix", '"${@: -1}" == set-permissions'),
    "after-postsuper-renames": ("postsuper", "$# -eq 2"),
    "after-postfix-start": ("postfix", '"${@: -1}" == start'),
}


def kill_wrapper(directory, command, condition, action='"$real" "$@"'):
    """A directory with a wrapper of COMMAND that kills its caller once CONDITION holds."""
    directory.mkdir()
    fired = directory / "fired"
    real = run(["bash", "-c", f"type -P {command}"]).stdout.strip()
    wrapper = directory / command
    wrapper.write_text(
        "#!/bin/bash\n"
        f'real="{real}"\n'
        f'if [[ {condition} ]] && [ ! -e "{fired}" ]; then\n'
        f"  {action}\n"
        f'  touch "{fired}"\n'
        "  kill -KILL $PPID\n"
        "  exit 137\n"
        "fi\n"
        'exec "$real" "$@"\n'
    )
    wrapper.chmod(0o755)
    return fired


def queued(instance):
    """The held messages (arrival, size, sender, recipient addresses), sorted: the same after a move."""
    return sorted((entry["arrival_time"], entry["message_size"], entry["sender"],
                   tuple(recipient["address"] for recipient in entry["recipients"]))
                  for entry in held_messages(instance))


def smtp_accepts(instance):
    with smtplib.SMTP(instance.address, 25, timeout=10) as smtp:
        smtp.ehlo("client.example.com")
        assert smtp.mail("after@example.org")[0] == 250
        assert smtp.rcpt(DEFERRED_RECIPIENT)[0] == 250
        return smtp.data("Subject: after\r\n\r\nafter the kill\r\n")[0] == 250


@pytest.mark.parametrize("point", KILL_POINTS, ids=KILL_POINTS.keys())
def test_a_killed_move_is_finished_by_the_next_apply(running_postfix, monkeypatch, point):
    instance = running_postfix
    held_message(instance, body="first")
    held_message(instance, body="second message")
    messages = queued(instance)
    assert len(messages) == 2
    target = instance.base / "moved-queue"
    minion = Masterless(instance.base / "salt").write_config()
    minion.set_pillar({"postfix": {"config_dir": str(instance.config_dir),
                                   "performance": {"queue": {"directory": str(target)}}}})
    fired = kill_wrapper(instance.base / "kill-bin", *KILL_POINTS[point])

    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{fired.parent}:{os.environ['PATH']}")
        rc, _ = minion.apply("postfix.performance.queue")
    assert fired.exists() and rc == -9, "salt-call was killed at the point"
    assert (instance.config_dir / MARKER).exists(), "the move in progress is on disk"

    rc, result = minion.apply("postfix.performance.queue")
    assert rc == 0, json.dumps(result, indent=1)
    moved = result[MOVED.format(target=target)]
    assert moved["changes"]["queue_directory"] == {"old": str(instance.queue_dir), "new": str(target)}
    assert moved["changes"]["resumed"] == {"old": None, "new": True}
    assert queue_directory(instance) == str(target)
    assert instance.status(), "Postfix runs again"
    assert queued(instance) == messages, "every message once, none lost"
    assert {path.owner() for path in (target / "hold").iterdir()} == {"postfix"}
    assert not (instance.config_dir / MARKER).exists()
    assert not (instance.queue_dir / "hold").exists(), "the old queue is retired"
    assert smtp_accepts(instance)

    rc, again = minion.apply("postfix.performance.queue")
    assert rc == 0 and changed_states(again) == {}


def test_a_move_killed_before_the_switch_gives_way_to_a_new_target(running_postfix, monkeypatch):
    """Pillar changed after the kill: the partial copy is removed, the queue goes to the new place."""
    instance = running_postfix
    message = held_message(instance)
    first, second = instance.base / "first-queue", instance.base / "second-queue"
    minion = Masterless(instance.base / "salt").write_config()
    pillar = {"postfix": {"config_dir": str(instance.config_dir), "performance": {"queue": {"directory": str(first)}}}}
    fired = kill_wrapper(instance.base / "kill-bin", *KILL_POINTS["after-cp"])
    minion.set_pillar(pillar)
    with monkeypatch.context() as patch:
        patch.setenv("PATH", f"{fired.parent}:{os.environ['PATH']}")
        minion.apply("postfix.performance.queue")
    assert fired.exists() and (first / "hold").exists()

    pillar["postfix"]["performance"]["queue"]["directory"] = str(second)
    rc, result = minion.set_pillar(pillar).apply("postfix.performance.queue")
    assert rc == 0, json.dumps(result, indent=1)
    assert queue_directory(instance) == str(second)
    assert instance.status()
    assert held_messages(instance) == [message]
    assert list(first.iterdir()) == [], "the partial copy is gone"
    assert not (instance.config_dir / MARKER).exists()
