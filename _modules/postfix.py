"""
Control a Postfix instance: check its configuration, start, stop, reload,
status, and manage its mail queue.

Every function takes ``config_dir`` (``postfix -c``, ``postqueue -c``,
``postsuper -c``); None means the instance the formula manages on this
minion (``postfix:config_dir`` in pillar or the minion's config), else
Postfix's own configuration directory.

Postfix tools print their diagnostics on stderr only when stderr is a
terminal; otherwise they go to syslog alone, which may not exist. So every
command runs as an argument list (never through a shell) with stderr on a
pseudo-terminal, which is how this module reports Postfix's own messages.
``cmd.run_all`` cannot do that: its ``use_vt`` mode puts stdout on a
terminal but leaves stderr a pipe.
"""

import errno
import logging
import os
import pty
import re
import selectors
import socket
import subprocess
import time

import salt.utils.files
import salt.utils.json
import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "postfix"

COMMAND_TIMEOUT = 120
#: once the command has exited, how long to wait for more of its output
DRAIN_SECONDS = 0.1
#: short (hexadecimal) and long (enable_long_queue_ids) Postfix queue ids
QUEUE_ID = re.compile(r"^[0-9A-Za-z]{5,32}$")
ALL_MESSAGES = "ALL"
POSTSUPER_COUNT = re.compile(r"^postsuper: [A-Za-z ]+: (\d+) messages?$", re.MULTILINE)
FAILURE_LINE = re.compile(r"\b(fatal|panic|error):")
MASTER_PID = re.compile(r"is running: PID: (\d+)")
#: log lines that say a daemon could not run its configuration
FATAL_LINE = re.compile(r"\b(fatal|panic):")
#: programs that greet with SMTP's 220 on connect
SMTP_SERVERS = ("smtpd", "postscreen")
PROBE_TIMEOUT_SECONDS = 5


def __virtual__():
    missing = [tool for tool in ("postfix", "postqueue", "postsuper") if not salt.utils.path.which(tool)]
    if missing:
        return (False, f"the postfix module needs Postfix: {', '.join(missing)} not found on PATH")
    return __virtualname__


def _config_dir(config_dir):
    return config_dir or __salt__["config.get"]("postfix:config_dir") or None


def _config_args(config_dir):
    config_dir = _config_dir(config_dir)
    return ["-c", str(config_dir)] if config_dir else []


def _read_chunk(fd):
    """One read; b"" at end of file (a pseudo-terminal reports EIO when its last writer is gone)."""
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:
            return b""
        raise


def _collect(proc, terminal, argv):
    """Read PROC's stdout and the terminal until PROC has exited and nothing more is waiting.

    Children left running in the background hold both open (``postfix reload``
    leaves a ``postsuper`` scanning the queue): they are not waited for.
    Returns [stdout, terminal text].
    """
    received = {proc.stdout.fileno(): [], terminal: []}
    deadline = time.monotonic() + COMMAND_TIMEOUT
    with selectors.DefaultSelector() as selector:
        for fd in received:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            if time.monotonic() > deadline:
                proc.kill()
                raise CommandExecutionError(f"{' '.join(argv)} did not finish within {COMMAND_TIMEOUT} s")
            events = selector.select(DRAIN_SECONDS)
            if not events and proc.poll() is not None:
                break
            for key, _ in events:
                chunk = _read_chunk(key.fd)
                if chunk:
                    received[key.fd].append(chunk)
                else:
                    selector.unregister(key.fd)
    return [b"".join(received[fd]).decode(errors="replace") for fd in (proc.stdout.fileno(), terminal)]


def _run(argv):
    """Run ARGV; return {"retcode", "stdout", "messages"} (messages: what Postfix wrote on the terminal)."""
    argv = [salt.utils.path.which(argv[0]) or argv[0], *argv[1:]]
    log.debug("postfix: running %s", argv)
    terminal, terminal_end = pty.openpty()
    try:
        with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal_end) as proc:
            os.close(terminal_end)
            terminal_end = None
            stdout, messages = _collect(proc, terminal, argv)
            retcode = proc.wait()
    except OSError as exc:
        raise CommandExecutionError(f"cannot run {' '.join(argv)}: {exc}") from exc
    finally:
        os.close(terminal)
        if terminal_end is not None:
            os.close(terminal_end)
    messages = messages.replace("\r\n", "\n").strip()
    log.debug("postfix: %s exited %s: %s", os.path.basename(argv[0]), retcode, messages)
    return {"retcode": retcode, "stdout": stdout, "messages": messages}


def _run_checked(argv):
    """Run ARGV; raise CommandExecutionError with Postfix's messages when it fails."""
    result = _run(argv)
    if result["retcode"] != 0:
        reason = result["messages"] or f"exit status {result['retcode']}, no message"
        raise CommandExecutionError(f"{' '.join(argv)} failed: {reason}")
    return result


def _postfix(command, config_dir):
    return ["postfix", *_config_args(config_dir), command]


def check(config_dir=None):
    """
    Check the Postfix configuration (``postfix check``).

    Returns True, or raises CommandExecutionError with Postfix's own message.
    Warnings of a passing check are logged.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.check
        salt '*' postfix.check config_dir=/etc/postfix-out
    """
    result = _run_checked(_postfix("check", config_dir))
    if result["messages"]:
        log.warning("postfix check: %s", result["messages"])
    return True


def _process_alive(pid):
    """True if PID is a live process, not a zombie waiting to be reaped."""
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        with salt.utils.files.fopen(f"/proc/{pid}/stat", "r") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _master_in_pid_file(config_dir):
    """True if the master named in the queue's pid/master.pid runs, False if not;
    None where /proc cannot tell. Raises CommandExecutionError when postconf
    cannot read main.cf."""
    if not os.path.isdir("/proc/self"):
        return None
    queue_directory = __salt__["postconf.get"]("queue_directory", config_dir=config_dir)
    try:
        with salt.utils.files.fopen(os.path.join(queue_directory, "pid", "master.pid"), "r") as handle:
            pid = int(handle.read().strip())
        with salt.utils.files.fopen(f"/proc/{pid}/comm", "r") as handle:
            program = handle.read().strip()
    except (OSError, ValueError):
        return False
    return program == "master" and _process_alive(pid)


def status(config_dir=None):
    """
    Return True if the Postfix instance is running, False if it is not.

    The master's pid file in the queue directory names it, and /proc tells
    whether that process is a live master: one postconf call, no
    ``postfix status`` (a shell script that pauses a second when Postfix is
    not running). Without /proc, ``postfix status``, whose PID is checked too
    (it reports a master that died on a bad configuration as running: it
    trusts the stale pid file when the master cannot read main.cf).
    Raises CommandExecutionError if Postfix cannot tell (e.g. no main.cf).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.status
        salt '*' postfix.status config_dir=/etc/postfix-out
    """
    config_dir = _config_dir(config_dir)
    running = _master_in_pid_file(config_dir)
    if running is not None:
        return running
    argv = _postfix("status", config_dir)
    result = _run(argv)
    if result["retcode"] == 0:
        master = MASTER_PID.search(result["messages"])
        return master is None or _process_alive(int(master.group(1)))
    if "is not running" in result["messages"] and not FAILURE_LINE.search(result["messages"]):
        return False
    raise CommandExecutionError(f"{' '.join(argv)} failed: {result['messages']}")


def _file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _failures_logged_since(maillog, offset):
    """Failure lines written to MAILLOG after byte OFFSET."""
    try:
        with salt.utils.files.fopen(maillog, "rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if FAILURE_LINE.search(line)]


def _inet_addresses(config_dir):
    """Where an inet service without its own host listens: inet_interfaces, as addresses to connect to."""
    interfaces = __salt__["postconf.get"]("inet_interfaces", config_dir=config_dir).replace(",", " ").split()
    protocols = __salt__["postconf.get"]("inet_protocols", config_dir=config_dir)
    loopback = ["127.0.0.1"] if "ipv6" not in protocols or "ipv4" in protocols or "all" in protocols else ["::1"]
    addresses = []
    for interface in interfaces:
        if interface in ("all", "loopback-only"):
            addresses.extend(loopback)
        else:
            addresses.append(interface.strip("[]"))
    return addresses


def listeners(config_dir=None):
    """
    Return the inet services of master.cf with where they listen:
    ``[{"service": "name/inet", "host", "port", "command"}]`` (a service
    without its own host listens on every ``inet_interfaces`` address;
    ``all`` and ``loopback-only`` are probed on loopback).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.listeners
    """
    config_dir = _config_dir(config_dir)
    found = []
    inet_addresses = None
    for key, service in __salt__["postconf.services"](config_dir=config_dir).items():
        name, _, service_type = key.rpartition("/")
        if service_type != "inet":
            continue
        host, _, port = name.rpartition(":")
        if not host and inet_addresses is None:
            inet_addresses = _inet_addresses(config_dir)
        hosts = [host.strip("[]")] if host else inet_addresses
        try:
            number = int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
        except OSError:
            raise CommandExecutionError(f"master.cf service {key}: unknown port {port!r}") from None
        command = service["command"].split()[0]
        found.extend({"service": key, "host": address, "port": number, "command": command} for address in hosts)
    return found


def _greeting(host, port, smtp):
    """None if HOST:PORT accepts a connection (and, for SMTP, greets with 220), else why not."""
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS) as connection:
            if not smtp:
                return None
            line = connection.makefile("rb").readline(1024).decode(errors="replace").strip()
    except OSError as exc:
        return f"{host}:{port}: {exc}"
    if not line.startswith("220"):
        return f"{host}:{port} greets with {line!r}, not 220" if line else f"{host}:{port} closed without a greeting"
    return None


def probe(config_dir=None, log_offset=None):
    """
    Prove that Postfix serves: it runs, every inet listener of master.cf
    accepts a connection (smtpd and postscreen greet with 220), and, when
    ``maillog_file`` is set and LOG_OFFSET given, nothing it logged after
    byte LOG_OFFSET is a fatal or panic line. Returns the problems found, an
    empty list when it serves.

    log_offset
        The size of ``maillog_file`` before the change being proven
        (:py:func:`log_size`).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.probe
    """
    config_dir = _config_dir(config_dir)
    problems = []
    if status(config_dir):
        for listener in listeners(config_dir):
            problem = _greeting(listener["host"], listener["port"], listener["command"] in SMTP_SERVERS)
            if problem:
                problems.append(f"{listener['service']}: {problem}")
    else:
        problems.append("Postfix is not running")
    maillog = __salt__["postconf.get"]("maillog_file", config_dir=config_dir)
    if maillog and log_offset is not None:
        problems.extend(line for line in _failures_logged_since(maillog, log_offset) if FATAL_LINE.search(line))
    return problems


def serving(config_dir=None, timeout=30):
    """
    Wait up to TIMEOUT seconds for :py:func:`probe` to find nothing wrong:
    True once Postfix runs and every inet listener answers, else raise
    CommandExecutionError with the problems last seen. What an
    orchestration checks before it goes on to the next minion.

    CLI Example:

    .. code-block:: bash

        salt mx1 postfix.serving
        salt mx1 postfix.serving timeout=60
    """
    deadline = time.monotonic() + timeout
    while True:
        problems = probe(config_dir)
        if not problems:
            return True
        if time.monotonic() >= deadline:
            raise CommandExecutionError(f"Postfix does not serve after {timeout} s: {'; '.join(problems)}")
        time.sleep(0.5)


def log_size(config_dir=None):
    """
    The size of Postfix's ``maillog_file`` (0 when it is not set or not
    there yet): the offset :py:func:`probe` reads the log from.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.log_size
    """
    config_dir = _config_dir(config_dir)
    maillog = __salt__["postconf.get"]("maillog_file", config_dir=config_dir)
    return _file_size(maillog) if maillog else 0


def start(config_dir=None):
    """
    Start the Postfix instance (``postfix start``); True when it runs.

    Already running is success. A failed start raises CommandExecutionError
    with Postfix's messages and the failures it logged to ``maillog_file``
    (e.g. ``fatal: bind 127.0.0.2 port 25: Address already in use``).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.start
        salt '*' postfix.start config_dir=/etc/postfix-out
    """
    config_dir = _config_dir(config_dir)
    if status(config_dir):
        return True
    maillog = __salt__["postconf.get"]("maillog_file", config_dir=config_dir)
    offset = _file_size(maillog) if maillog else 0
    argv = _postfix("start", config_dir)
    result = _run(argv)
    if result["retcode"] == 0:
        return True
    logged = _failures_logged_since(maillog, offset) if maillog else ["(maillog_file is not set: see the system log)"]
    reason = "\n".join([result["messages"], *logged]).strip()
    raise CommandExecutionError(f"{' '.join(argv)} failed: {reason}")


def stop(config_dir=None):
    """
    Stop the Postfix instance (``postfix stop``); True when it no longer runs.

    Already stopped is success.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.stop
        salt '*' postfix.stop config_dir=/etc/postfix-out
    """
    if status(config_dir):
        _run_checked(_postfix("stop", config_dir))
    return True


def reload(config_dir=None):
    """
    Make a running Postfix re-read its configuration (``postfix reload``).

    Returns True; raises CommandExecutionError with Postfix's message if it
    is not running or the reload fails. Some parameters (inet_interfaces,
    inet_protocols, ...) only take effect on a stop and start: the
    ``postfix.running`` state knows which.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.reload
        salt '*' postfix.reload config_dir=/etc/postfix-out
    """
    _run_checked(_postfix("reload", config_dir))
    return True


def set_permissions(config_dir=None):
    """
    Set the ownership and permissions of Postfix's files and directories,
    creating what is missing in the queue (``postfix set-permissions``).
    Returns True; raises CommandExecutionError with Postfix's message.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.set_permissions
        salt '*' postfix.set_permissions config_dir=/etc/postfix-out
    """
    _run_checked(_postfix("set-permissions", config_dir))
    return True


def repair_queue(config_dir=None):
    """
    Check the queue's structure and rename queue files whose name does not
    match their inode number, e.g. after the queue was copied (``postsuper``
    without options). Returns True; raises CommandExecutionError with
    Postfix's message.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.repair_queue
        salt '*' postfix.repair_queue config_dir=/etc/postfix-out
    """
    _run_checked(["postsuper", *_config_args(config_dir)])
    return True


def queue(config_dir=None):
    """
    List the messages in the mail queue, as ``postqueue -j`` describes them.

    Each message is a dict with queue_name (maildrop, incoming, active,
    deferred, hold), queue_id, arrival_time, message_size, forced_expire,
    sender and recipients (a list of {address, delay_reason}).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.queue
        salt '*' postfix.queue config_dir=/etc/postfix-out
    """
    result = _run_checked(["postqueue", *_config_args(config_dir), "-j"])
    return [salt.utils.json.loads(line) for line in result["stdout"].splitlines() if line.strip()]


def flush(config_dir=None):
    """
    Attempt to deliver all queued mail now (``postqueue -f``); returns True.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.flush
        salt '*' postfix.flush config_dir=/etc/postfix-out
    """
    _run_checked(["postqueue", *_config_args(config_dir), "-f"])
    return True


def _queue_ids(queue_id):
    """The queue ids in QUEUE_ID (one id, "ALL", or a list of ids), validated."""
    queue_ids = [queue_id] if isinstance(queue_id, str) else queue_id
    if not isinstance(queue_ids, (list, tuple)) or not queue_ids:
        raise SaltInvocationError(f"queue_id must be a queue id, a list of queue ids or 'ALL', not {queue_id!r}")
    for one_id in queue_ids:
        if not isinstance(one_id, str) or not QUEUE_ID.match(one_id):
            raise SaltInvocationError(f"invalid Postfix queue id: {one_id!r}")
    if ALL_MESSAGES in queue_ids and len(queue_ids) > 1:
        raise SaltInvocationError("queue_id 'ALL' cannot be combined with other queue ids")
    return queue_ids


def _postsuper(option, queue_id, config_dir):
    """Apply ``postsuper OPTION`` to QUEUE_ID; return how many messages it affected."""
    argv = ["postsuper", *_config_args(config_dir)]
    for one_id in _queue_ids(queue_id):
        argv += [option, one_id]
    result = _run_checked(argv)
    return sum(int(count) for count in POSTSUPER_COUNT.findall(result["messages"]))


def requeue(queue_id, config_dir=None):
    """
    Requeue messages (``postsuper -r``): they get new queue ids and are
    processed again. Returns the number of messages requeued.

    queue_id is required: a queue id, a list of queue ids, or "ALL" for
    every queued message.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.requeue 3F2A1C0B7D
        salt '*' postfix.requeue ALL config_dir=/etc/postfix-out
    """
    return _postsuper("-r", queue_id, config_dir)


def hold(queue_id, config_dir=None):
    """
    Put messages on hold (``postsuper -h``). Returns how many were put on hold.

    queue_id is required: a queue id, a list of queue ids, or "ALL" for
    every queued message.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.hold 3F2A1C0B7D
        salt '*' postfix.hold ALL config_dir=/etc/postfix-out
    """
    return _postsuper("-h", queue_id, config_dir)


def release(queue_id, config_dir=None):
    """
    Release messages from hold (``postsuper -H``). Returns how many were released.

    queue_id is required: a queue id, a list of queue ids, or "ALL" for
    every queued message.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.release 3F2A1C0B7D
        salt '*' postfix.release ALL config_dir=/etc/postfix-out
    """
    return _postsuper("-H", queue_id, config_dir)


def delete(queue_id, config_dir=None):
    """
    Delete messages from the queue (``postsuper -d``). Returns how many were deleted.

    queue_id is required: a queue id, a list of queue ids, or "ALL" to empty
    the whole queue.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix.delete 3F2A1C0B7D
        salt '*' postfix.delete ALL config_dir=/etc/postfix-out
    """
    return _postsuper("-d", queue_id, config_dir)
