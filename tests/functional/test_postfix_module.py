"""The postfix execution module against real sandboxed Postfix instances."""

import os
import shutil
import smtplib
import socket
import threading
import time

import pytest
from salt.exceptions import CommandExecutionError, SaltInvocationError

#: outside the addresses postfix_factory hands out: a relay nobody listens on (until the sink does)
RELAY_ADDRESS = "127.0.0.35"
RELAY_PORT = 2525
RECIPIENT = "bob@remote.test"


def edit_main_cf(instance, *postconf_args):
    """postconf -e/-X on INSTANCE, then age main.cf: Postfix tools stall until main.cf is ~2 s old."""
    instance.postconf(*postconf_args)
    then = time.time() - 10
    os.utime(instance.config_dir / "main.cf", (then, then))


def wait_until(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def send_mail(instance, recipient=RECIPIENT):
    """Relay a message through INSTANCE from 127.0.0.1 (in its mynetworks)."""
    with smtplib.SMTP(instance.address, instance.port, source_address=("127.0.0.1", 0), timeout=10) as smtp:
        smtp.sendmail("alice@example.test", [recipient], "Subject: queued\r\n\r\nhello\r\n")


class SmtpSink(threading.Thread):
    """A one-connection SMTP server that records the recipients it accepts."""

    def __init__(self, address, port):
        super().__init__(daemon=True)
        self.recipients = []
        self.server = socket.create_server((address, port))

    def run(self):
        connection, _ = self.server.accept()
        with connection, connection.makefile("rwb") as stream:
            self._converse(stream)
        self.server.close()

    def _converse(self, stream):
        def reply(line):
            stream.write(line + b"\r\n")
            stream.flush()

        reply(b"220 sink")
        in_data = False
        for line in stream:
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    reply(b"250 queued")
                continue
            verb = line[:4].upper()
            if verb == b"RCPT":
                self.recipients.append(line.decode().split(":", 1)[1].strip().strip("<>"))
            if verb == b"DATA":
                in_data = True
                reply(b"354 go ahead")
            elif verb == b"QUIT":
                reply(b"221 bye")
                return
            else:
                reply(b"250 ok")


@pytest.fixture
def running(postfix_sandbox):
    return postfix_sandbox.start()


@pytest.fixture
def queued(postfix_sandbox, modules):
    """A running instance holding one deferred message (its relay refuses connections)."""
    instance = postfix_sandbox
    edit_main_cf(instance, "-e", f"relayhost = [{RELAY_ADDRESS}]:{RELAY_PORT}")
    instance.start()
    send_mail(instance)

    def deferred():
        return [m for m in modules.postfix.queue(config_dir=str(instance.config_dir)) if m["queue_name"] == "deferred"]

    message = wait_until(deferred, what="a deferred message")[0]
    return instance, message


def smtp_banner(address):
    """The greeting of a NEW SMTP connection to ADDRESS:25."""
    with smtplib.SMTP(timeout=10) as smtp:
        return smtp.connect(address, 25)[1].decode()


def queue_of(modules, instance):
    return {m["queue_id"]: m for m in modules.postfix.queue(config_dir=str(instance.config_dir))}


def test_check_passes_on_a_good_configuration(modules, postfix_sandbox):
    assert modules.postfix.check(config_dir=str(postfix_sandbox.config_dir)) is True


def test_check_raises_with_postfix_own_message(modules, postfix_sandbox):
    edit_main_cf(postfix_sandbox, "-e", "default_process_limit = plenty")
    with pytest.raises(CommandExecutionError, match="bad numerical configuration: default_process_limit = plenty"):
        modules.postfix.check(config_dir=str(postfix_sandbox.config_dir))


def test_start_status_stop(modules, postfix_sandbox):
    config_dir = str(postfix_sandbox.config_dir)
    assert modules.postfix.status(config_dir=config_dir) is False
    assert modules.postfix.start(config_dir=config_dir) is True
    assert modules.postfix.status(config_dir=config_dir) is True
    with smtplib.SMTP(postfix_sandbox.address, 25, timeout=10) as smtp:
        assert smtp.noop()[0] == 250
    assert modules.postfix.start(config_dir=config_dir) is True, "starting a running instance is not an error"
    assert modules.postfix.stop(config_dir=config_dir) is True
    assert modules.postfix.status(config_dir=config_dir) is False
    assert postfix_sandbox.status() is False
    assert modules.postfix.stop(config_dir=config_dir) is True, "stopping a stopped instance is not an error"


def test_failed_start_reports_the_logged_reason(modules, postfix_sandbox):
    with socket.create_server((postfix_sandbox.address, 25)):
        with pytest.raises(CommandExecutionError, match="bind .* port 25: Address already in use"):
            modules.postfix.start(config_dir=str(postfix_sandbox.config_dir))
    assert postfix_sandbox.status() is False


def test_status_raises_when_postfix_cannot_read_its_configuration(modules, tmp_path):
    with pytest.raises(CommandExecutionError, match="main.cf"):
        modules.postfix.status(config_dir=str(tmp_path))


def test_reload_of_a_stopped_instance_fails_with_postfix_message(modules, postfix_sandbox):
    with pytest.raises(CommandExecutionError, match="the Postfix mail system is not running"):
        modules.postfix.reload(config_dir=str(postfix_sandbox.config_dir))


def test_reload_applies_a_new_banner(modules, running):
    old_banner = smtp_banner(running.address)  # leaves an idle smtpd that keeps the old configuration
    edit_main_cf(running, "-e", "smtpd_banner = $myhostname ESMTP reloaded-by-module")
    assert smtp_banner(running.address) == old_banner, "without a reload the idle smtpd answers"
    assert modules.postfix.reload(config_dir=str(running.config_dir)) is True
    # the master takes the reload signal asynchronously
    wait_until(lambda: smtp_banner(running.address) == f"{running.hostname} ESMTP reloaded-by-module",
               timeout=10, what="the new banner")


def test_queue_lists_hold_release_requeue_delete(modules, queued):
    instance, message = queued
    config_dir = str(instance.config_dir)
    queue_id = message["queue_id"]
    assert message["sender"] == "alice@example.test"
    assert [r["address"] for r in message["recipients"]] == [RECIPIENT]
    assert "Connection refused" in message["recipients"][0]["delay_reason"]

    assert modules.postfix.hold(queue_id, config_dir=config_dir) == 1
    assert queue_of(modules, instance)[queue_id]["queue_name"] == "hold"
    assert modules.postfix.release(queue_id, config_dir=config_dir) == 1
    assert queue_of(modules, instance)[queue_id]["queue_name"] == "deferred"

    assert modules.postfix.requeue(queue_id, config_dir=config_dir) == 1
    assert queue_of(modules, instance)[queue_id]["queue_name"] == "maildrop"
    # flushing makes pickup take it in again, under a new queue id
    modules.postfix.flush(config_dir=config_dir)
    requeued = wait_until(lambda: [i for i, m in queue_of(modules, instance).items() if m["queue_name"] == "deferred"],
                          what="the requeued message")
    assert queue_id not in requeued

    assert modules.postfix.delete(requeued, config_dir=config_dir) == 1
    assert queue_of(modules, instance) == {}
    assert modules.postfix.delete(queue_id, config_dir=config_dir) == 0, "an id no longer queued deletes nothing"


def test_flush_delivers_deferred_mail_once_the_relay_answers(modules, queued):
    instance, _ = queued
    config_dir = str(instance.config_dir)
    sink = SmtpSink(RELAY_ADDRESS, RELAY_PORT)
    sink.start()
    assert modules.postfix.flush(config_dir=config_dir) is True
    wait_until(lambda: not modules.postfix.queue(config_dir=config_dir), what="an empty queue")
    sink.join(timeout=10)
    assert sink.recipients == [RECIPIENT]


@pytest.mark.parametrize(
    "bad_id", ["", "; rm -rf /", "-d", "ABC DEF", "../../etc", "x" * 40, ["4F2A01", "bad id"], ["ALL", "4F2A01B"], [], 42]
)
def test_bad_queue_ids_are_refused_before_anything_runs(modules, bad_id, tmp_path):
    for operation in (modules.postfix.delete, modules.postfix.hold, modules.postfix.release, modules.postfix.requeue):
        with pytest.raises(SaltInvocationError):
            # a config dir without main.cf: reaching postsuper would raise CommandExecutionError instead
            operation(bad_id, config_dir=str(tmp_path))


def test_delete_needs_an_explicit_queue_id(modules):
    with pytest.raises(TypeError):
        modules.postfix.delete()


def test_hold_release_requeue_need_an_explicit_queue_id(modules):
    for operation in (modules.postfix.hold, modules.postfix.release, modules.postfix.requeue):
        with pytest.raises(TypeError):
            operation()


def test_set_permissions_repairs_the_queue(modules, postfix_sandbox):
    hold = postfix_sandbox.queue_dir / "hold"
    hold.mkdir(mode=0o755)  # as root, world-readable: not how Postfix wants it
    assert modules.postfix.set_permissions(config_dir=str(postfix_sandbox.config_dir)) is True
    assert hold.owner() == "postfix"
    assert hold.stat().st_mode & 0o777 == 0o700


def test_set_permissions_fails_with_postfix_message(modules, tmp_path):
    with pytest.raises(CommandExecutionError, match="main.cf"):
        modules.postfix.set_permissions(config_dir=str(tmp_path))


def test_repair_queue_renames_a_copied_queue_file_after_its_inode(modules, queued):
    instance, message = queued
    config_dir = str(instance.config_dir)
    modules.postfix.hold(message["queue_id"], config_dir=config_dir)
    held = instance.queue_dir / "hold" / message["queue_id"]
    copy = held.with_name("copy")
    shutil.copy2(held, copy)
    os.chown(copy, held.stat().st_uid, held.stat().st_gid)
    os.replace(copy, held)  # a restored queue file: same name, another inode
    assert modules.postfix.repair_queue(config_dir=config_dir) is True
    renamed = [m["queue_id"] for m in modules.postfix.queue(config_dir=config_dir) if m["queue_name"] == "hold"]
    assert len(renamed) == 1 and renamed != [message["queue_id"]]
