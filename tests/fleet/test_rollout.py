"""R2 sync, R12, D3 with a real salt-master: the orchestrated rollout of a bare
fleet (database host, then the primaries, then the backup, each proven to
serve before the next), the MX and A records the backup's DNS cache serves
from the mine, mail spread over both primaries, a mailbox added after the
rollout known to the backup at once (logical replication) while both
primaries are down, and a failing minion stopping the rollout.

Tests run in file order and build on each other: one fleet per module."""

import secrets
import smtplib
import subprocess
import time

from tests.e2e import mail
from tests.e2e.polling import wait_until

from .conftest import ALICE
from .topology import BACKUP, CLIENT, DATABASE_HOST, DNS_ADDRESS, DOMAIN, HOSTS, MX_NAME, PRIMARIES

ROLLOUT_ORDER = [DATABASE_HOST, "mx1", "mx2", BACKUP]
#: how long the backup may take to accept a mailbox added on the primary (the issue's bound)
REPLICATION_SECONDS = 5


def orchestrate(fleet):
    """salt-run state.orchestrate postfix.orch.rollout: (returncode, {state id: result})."""
    result = fleet.salt.run("state.orchestrate", "postfix.orch.rollout")
    data = result.data
    if isinstance(data, dict) and "data" in data:
        data = data["data"]
    states = next(iter(data.values())) if isinstance(data, dict) and len(data) == 1 else data
    assert isinstance(states, dict), result.stdout + result.stderr
    return result.returncode, states


def failures(states):
    """state id -> comment of every failed step, with the failed states of the minions it applied."""
    found = {}
    for key, value in states.items():
        if value["result"] is True:
            continue
        minions = value.get("changes", {}).get("ret", {}) or {}
        inner = {f"{minion}: {inner_key.split('_|-')[1]}": inner_value.get("comment")
                 for minion, results in minions.items() if isinstance(results, dict)
                 for inner_key, inner_value in results.items()
                 if isinstance(inner_value, dict) and inner_value.get("result") is False}
        found[key.split("_|-")[1]] = (value["comment"], inner)
    return found


def step(states, state_id):
    """The orchestration step STATE_ID (its result dict)."""
    return next(value for key, value in states.items() if key.split("_|-")[1] == state_id)


def apply_changes(fleet, minion, sls):
    """Apply SLS on MINION through the master; return the states that changed (failures raise)."""
    result = fleet.salt.salt(minion, "state.apply", sls)
    states = result.data
    assert isinstance(states, dict), result.stdout + result.stderr
    failed = {key: value["comment"] for key, value in states.items() if value["result"] is False}
    assert result.returncode == 0 and not failed, failed or result.stderr
    return {key.split("_|-")[1]: value["changes"] for key, value in states.items() if value["changes"]}


def dig(name, qtype):
    argv = ["dig", f"@{DNS_ADDRESS}", "+short", "+time=2", "+tries=1", name, qtype]
    return sorted(subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split("\n"))[1:]


def send_via_client(recipient, count=1):
    """COUNT messages to RECIPIENT handed to the client MTA (it finds the MX itself); their tokens."""
    tokens = []
    for _ in range(count):
        token, message = mail.new_message(recipient)
        with smtplib.SMTP(CLIENT[1], 25, timeout=20, source_address=("127.0.0.1", 0)) as smtp:
            smtp.sendmail(mail.SENDER, [recipient], message)
        tokens.append(token)
    return tokens


def maildir(fleet, minion, address):
    local_part, domain = address.split("@")
    root = fleet.overlays[minion]["postfix"]["dovecot"]["mail_root"]
    return mail.Maildir(f"{root}/{domain}/{local_part}")


def queue(instance):
    output = subprocess.run(["postqueue", "-c", str(instance.config_dir), "-j"], capture_output=True, text=True,
                            check=True).stdout
    return [line for line in output.splitlines() if line.strip()]


def test_orchestrated_rollout_of_a_bare_fleet_goes_in_order_and_converges(fleet):
    returncode, states = orchestrate(fleet)
    assert returncode == 0 and not failures(states), "\n".join(map(str, failures(states).items()))

    applied = sorted((value["__run_num__"], key.split("_|-")[1]) for key, value in states.items()
                     if key.split("_|-")[1].endswith("-applied"))
    assert [name.removeprefix("postfix-orch-").removesuffix("-applied") for _, name in applied] == ROLLOUT_ORDER
    for minion in HOSTS:
        serving = step(states, f"postfix-orch-{minion}-serving")
        assert serving["__run_num__"] > step(states, f"postfix-orch-{minion}-applied")["__run_num__"]
    output = str(states)
    for secret in fleet.secrets():
        assert secret not in output

    # The second apply changes nothing anywhere.
    assert apply_changes(fleet, DATABASE_HOST, "postfix.database") == {}
    for minion in PRIMARIES:
        assert apply_changes(fleet, minion, "postfix") == {}
    assert apply_changes(fleet, BACKUP, "postfix.database,postfix") == {}


def test_every_member_is_in_the_mine_with_its_role(fleet):
    result = fleet.salt.salt(BACKUP, "postfix_fleet.members")
    members = result.data
    assert {minion: (record["role"], record["hostname"], record["address"]) for minion, record in members.items()} \
        == HOSTS
    assert members["mx1"]["domains"] == [DOMAIN] and members[BACKUP]["mx_priority"] == 20


def test_the_backups_dns_cache_serves_the_fleets_mx_and_round_robin_a_records(fleet):
    assert dig(DOMAIN, "MX") == [f"10 {MX_NAME}.", f"20 {HOSTS[BACKUP][1]}."]
    assert dig(MX_NAME, "A") == sorted(HOSTS[minion][2] for minion in PRIMARIES)
    assert dig(HOSTS[BACKUP][1], "A") == [HOSTS[BACKUP][2]]


def test_mail_from_outside_spreads_over_both_primaries(fleet):
    tokens = send_via_client(ALICE, count=20)
    boxes = [maildir(fleet, minion, ALICE) for minion in PRIMARIES]

    def delivered():
        return [[token for token in tokens if box.with_token(token)] for box in boxes]

    counts = [len(found) for found in wait_until(delivered, lambda d: sum(map(len, d)) >= 20, timeout=60)]
    assert sum(counts) == 20, counts
    assert min(counts) >= 2, f"20 messages did not spread over both primaries: {counts}"


def test_a_mailbox_added_after_the_rollout_reaches_the_backup_while_the_primaries_are_down(fleet):
    carol = f"carol-{secrets.token_hex(3)}@{DOMAIN}"
    backup = fleet.instances[BACKUP]
    primaries = [fleet.instances[minion] for minion in PRIMARIES]
    for instance in primaries:
        instance.stop()
    try:
        added = fleet.salt.salt("mx1", "postfixadmin.mailbox_add", carol, "carol-" + secrets.token_hex(8))
        assert added.returncode == 0, added.stdout + added.stderr
        start = time.monotonic()
        code, text = wait_until(lambda: mail.rcpt_reply(backup.address, carol, helo=CLIENT[0], source=CLIENT[1]),
                                lambda reply: reply[0] == 250, timeout=REPLICATION_SECONDS)
        assert code == 250, f"the backup still answers {code} {text} after {REPLICATION_SECONDS} s"
        assert time.monotonic() - start <= REPLICATION_SECONDS

        # Sent from outside: both primaries refuse connections, the backup (MX 20) takes it.
        (token,) = send_via_client(carol)
        assert wait_until(lambda: queue(backup), timeout=30), "the backup did not queue the message"
        assert queue(fleet.client) == []
        primaries[0].start()
    finally:
        for instance in primaries:
            if not instance.status():
                instance.start()
    flushed = fleet.salt.salt(BACKUP, "postfix.flush")
    assert flushed.returncode == 0 and flushed.data is True, flushed.stdout + flushed.stderr
    delivered = [box for box in (maildir(fleet, minion, carol) for minion in PRIMARIES)
                 if wait_until(lambda b=box: b.with_token(token), timeout=5)]
    assert len(delivered) == 1
    assert wait_until(lambda: queue(backup), lambda q: q == [], timeout=20) == []


def test_a_minion_that_fails_stops_the_rollout(fleet):
    good = fleet.salt.pillars["mx1"]
    bad = {**good, "postfix": {**good["postfix"], "database": {**good["postfix"]["database"], "port": 0}}}
    fleet.salt.set_pillar("mx1", bad)
    try:
        returncode, states = orchestrate(fleet)
    finally:
        fleet.salt.set_pillar("mx1", good)
    assert returncode != 0
    assert step(states, f"postfix-orch-{DATABASE_HOST}-applied")["result"] is True
    failed = step(states, "postfix-orch-mx1-applied")
    assert failed["result"] is False and "postfix:database:port" in str(failed), failed
    # failhard: the orchestration ends at the failure; nothing after it runs
    ran = {key.split("_|-")[1] for key in states}
    for later in ("postfix-orch-mx1-serving", "postfix-orch-mx2-applied", f"postfix-orch-{BACKUP}-applied"):
        assert later not in ran or (step(states, later)["result"] is False and not step(states, later)["changes"])
