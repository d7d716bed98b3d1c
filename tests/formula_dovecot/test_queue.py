"""postfix.performance.queue (R11): the queue moves to its own filesystem,
mounted noatime, without losing what was queued; Postfix runs on it."""

import json
import os
import smtplib
import time

import pytest

from tests.harness.masterless import Masterless, changed_states
from tests.harness.procs import run

MOVED = "postfix_queue_|-postfix-performance-queue-moved_|-{target}_|-moved"


def make_disk(sandbox_base, size):
    """(image, mount point): a fresh ext4 filesystem in an image file - the test's
    own fast disk, loop-mounted by the formula."""
    image = sandbox_base / "h4b-queue.img"
    run(["truncate", "-s", size, str(image)])
    run(["mkfs.ext4", "-q", "-F", str(image)])
    return image, sandbox_base / "h4b-fast-queue"


def remove_disk(image, mount_point):
    run(["umount", str(mount_point)], check=False)
    image.unlink()


@pytest.fixture
def fast_disk(sandbox_base):
    disk = make_disk(sandbox_base, "64M")
    yield disk
    remove_disk(*disk)


@pytest.fixture
def tiny_disk(sandbox_base):
    """Too small for the queue that is to move there."""
    disk = make_disk(sandbox_base, "1M")
    yield disk
    remove_disk(*disk)


@pytest.fixture
def running_postfix(postfix_factory):
    return postfix_factory(address="127.0.0.38").start()


def queue_pillar(instance, target, device):
    return {"postfix": {"config_dir": str(instance.config_dir), "performance": {"queue": {
        "directory": str(target), "device": device, "fstype": "ext4", "mount_options": ["noatime"]}}}}


#: a recipient whose delivery is deferred (nothing listens there), never bounced, whatever DNS says
DEFERRED_RECIPIENT = "nobody@[127.0.0.39]"


def held_message(instance, body="queued"):
    """Queue a message over SMTP and put it on hold; return how postqueue describes it."""
    with smtplib.SMTP(instance.address, 25, timeout=10) as smtp:
        smtp.sendmail("sender@example.org", [DEFERRED_RECIPIENT], f"Subject: keep me\r\n\r\n{body}\r\n")
    for _ in range(100):
        run(["postsuper", "-c", str(instance.config_dir), "-h", "ALL"])
        held = held_messages(instance)
        if held:
            return held[0]
        time.sleep(0.1)
    raise AssertionError("the message never reached the hold queue")


def held_messages(instance):
    """The held messages without their queue ids (a moved file is renamed to its new inode)."""
    out = run(["postqueue", "-c", str(instance.config_dir), "-j"]).stdout
    entries = [json.loads(line) for line in out.splitlines()]
    return [{key: entry[key] for key in ("arrival_time", "message_size", "sender", "recipients")}
            for entry in entries if entry["queue_name"] == "hold"]


def mount_options(target):
    for line in open("/proc/self/mounts", encoding="ascii"):
        fields = line.split()
        if fields[1] == str(target):
            return fields[3].split(",")
    return None


def test_queue_moves_to_noatime_filesystem(fast_disk, running_postfix):
    instance = running_postfix
    message = held_message(instance)
    image, target = fast_disk
    minion = Masterless(instance.base / "salt").write_config()
    minion.set_pillar(queue_pillar(instance, target, str(image)))

    rc, predicted = minion.apply("postfix.performance.queue", test=True)
    assert rc == 0, json.dumps(predicted, indent=1)
    assert predicted[MOVED.format(target=target)]["result"] is None
    assert instance.postconf("-h", "queue_directory").strip() == str(instance.queue_dir)
    assert mount_options(target) is None

    rc, result = minion.apply("postfix.performance.queue")
    assert rc == 0, json.dumps(result, indent=1)
    assert result[MOVED.format(target=target)]["changes"]["queue_directory"] == {
        "old": str(instance.queue_dir), "new": str(target)}
    assert "noatime" in mount_options(target)
    assert instance.postconf("-h", "queue_directory").strip() == str(target)
    assert instance.status()
    assert held_messages(instance) == [message]
    assert {path.owner() for path in (target / "hold").iterdir()} == {"postfix"}

    held_message(instance)
    assert len(list((target / "hold").iterdir())) == 2, "new mail is queued on the new filesystem"

    rc, again = minion.apply("postfix.performance.queue")
    assert rc == 0 and changed_states(again) == {}


def test_failed_copy_leaves_postfix_on_the_old_queue(tiny_disk, running_postfix):
    instance = running_postfix
    message = held_message(instance, body="x" * 2_000_000)
    image, target = tiny_disk
    minion = Masterless(instance.base / "salt").write_config()
    minion.set_pillar(queue_pillar(instance, target, str(image)))
    rc, result = minion.apply("postfix.performance.queue")
    assert rc != 0
    assert f"queue not moved, Postfix back on {instance.queue_dir}" in result[MOVED.format(target=target)]["comment"]
    assert instance.postconf("-h", "queue_directory").strip() == str(instance.queue_dir)
    assert instance.status()
    assert held_messages(instance) == [message]


def test_relative_queue_directory_is_refused(running_postfix):
    instance = running_postfix
    minion = Masterless(instance.base / "salt").write_config()
    minion.set_pillar(queue_pillar(instance, "spool2", None))
    rc, result = minion.apply("postfix.performance.queue")
    assert rc != 0
    assert "pillar postfix:performance:queue:directory: must be an absolute path" in str(result)
    assert instance.postconf("-h", "queue_directory").strip() == str(instance.queue_dir)
    assert instance.status()


@pytest.fixture
def submit_during_switch(tmp_path, monkeypatch):
    """Make a sendmail(1) submission land while the queue moves: a postconf wrapper first on
    PATH submits a message just before queue_directory is switched (Postfix is stopped then,
    so postdrop writes into the old maildrop)."""
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "postconf"
    wrapper.write_text(
        "#!/bin/bash\n"
        'if [[ " $* " == *" -e queue_directory="* ]]; then\n'
        '  printf "Subject: late\\n\\nsubmitted during the move\\n" |'
        f' /usr/sbin/sendmail -C "$2" -f late@example.org "{DEFERRED_RECIPIENT}"\n'
        "fi\n"
        'exec /usr/sbin/postconf "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}:{os.environ['PATH']}")


def picked_up_senders(instance):
    """Senders of the messages pickup has taken in (postqueue lists maildrop files too)."""
    out = run(["postqueue", "-c", str(instance.config_dir), "-j"]).stdout
    entries = [json.loads(line) for line in out.splitlines()]
    return [entry["sender"] for entry in entries if entry["queue_name"] != "maildrop"]


def test_mail_submitted_during_the_move_follows_the_queue(states, running_postfix, sandbox_base,
                                                          submit_during_switch):
    instance = running_postfix
    target = sandbox_base / "h4b-queue-late"
    ret = states.postfix_queue.moved(name=str(target), config_dir=str(instance.config_dir))
    assert ret.result is True, ret.comment
    assert ret.changes["late_maildrop_files"] == {"old": None, "new": 1}
    assert not (instance.queue_dir / "maildrop").exists(), "the old queue is retired"
    assert [list(retired.iterdir()) for retired in (instance.queue_dir).glob("retired-queue-*/maildrop")] == [[]]
    assert instance.status()
    for _ in range(100):
        if picked_up_senders(instance) == ["late@example.org"]:
            break
        time.sleep(0.1)
    assert picked_up_senders(instance) == ["late@example.org"]
    assert not list((target / "maildrop").iterdir()), "pickup took the moved file in"
