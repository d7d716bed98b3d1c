"""
A mail host's place in its fleet: its record in the Salt mine, and the DNS
records a name server of the fleet makes of every member's.

.. code-block:: yaml

    postfix-fleet-member-published:
      postfix_fleet.published:
        - role: primary
        - address: 192.0.2.10
        - hostname: mx1.example.com
        - domains: [example.com]

    /etc/postfix-dns-cache/fleet-records.conf:
      postfix_fleet.records_managed:
        - backend: dnsmasq
        - tgt: 'mx*'

Both read the other minions' data when they run, never when the sls is
rendered. ``records_managed`` fails, writing nothing, while no primary has
published yet (a zone made of an empty set would send the domains' mail
nowhere); the next apply, after the primaries', makes the records.
"""

import os

import salt.utils.atomicfile
import salt.utils.files
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "postfix_fleet"


def __virtual__():
    if "postfix_fleet.member" not in __salt__:
        return (False, "the postfix_fleet state needs the postfix_fleet execution module (saltutil.sync_all)")
    return __virtualname__


def _result(name, result=True, comment="", changes=None):
    return {"name": name, "result": result, "comment": comment, "changes": changes or {}}


def published(name="postfix_fleet", role=None, address=None, hostname=None, mx_priority=None, mx_name=None,
              domains=None):
    """
    This minion's fleet record (see ``postfix_fleet.member``) is in the Salt
    mine under NAME, where the orchestration, the fleet's DNS records and
    other minions read it. Sent with ``mine.send`` only when it differs.
    """
    fields = {"role": role, "address": address, "hostname": hostname, "mx_priority": mx_priority,
              "mx_name": mx_name, "domains": domains}
    try:
        wanted = __salt__["postfix_fleet.member"](**fields)
    except SaltInvocationError as exc:
        return _result(name, False, str(exc))
    minion = __grains__["id"]
    current = __salt__["mine.get"](minion, name).get(minion)
    if current == wanted:
        return _result(name, comment="the fleet record in the mine is up to date")
    changes = {"member": {"old": current, "new": wanted}}
    if __opts__["test"]:
        return _result(name, None, "the fleet record would be sent to the mine", changes)
    sent = __salt__["mine.send"](name, mine_function="postfix_fleet.member", **wanted)
    if not sent or __salt__["mine.get"](minion, name).get(minion) != wanted:
        return _result(name, False, "mine.send did not store the fleet record (see the minion log)")
    return _result(name, comment="the fleet record was sent to the mine", changes=changes)


def _read(path):
    try:
        with salt.utils.files.fopen(path, "r") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _records(text):
    return [line for line in (text or "").splitlines() if line and not line.startswith("#")]


def records_managed(name, backend="dnsmasq", tgt="*", tgt_type="glob", domains=None):
    """
    The file NAME holds the MX and A records (``postfix_fleet.records``) of
    the fleet members TGT matches, in BACKEND's syntax (``dnsmasq`` or
    ``unbound``), 0644 root. Changes list the records before and after.

    domains
        Only these domains (default: every domain a primary publishes).
    """
    try:
        fleet = __salt__["postfix_fleet.members"](tgt, tgt_type)
        zone = __salt__["postfix_fleet.records"](fleet, domains)
        text = __salt__["postfix_fleet.zone_text"](zone, backend)
    except (CommandExecutionError, SaltInvocationError) as exc:
        return _result(name, False, f"{exc}; {name} left as it is")
    current = _read(name)
    if current == text:
        return _result(name, comment=f"the fleet's DNS records in {name} are up to date")
    changes = {"records": {"old": _records(current) if current is not None else None, "new": _records(text)}}
    if __opts__["test"]:
        return _result(name, None, f"the fleet's DNS records would be written to {name}", changes)
    os.makedirs(os.path.dirname(name), exist_ok=True)
    with salt.utils.atomicfile.atomic_open(name, "w") as handle:
        handle.write(text)
    os.chmod(name, 0o644)
    if _read(name) != text:
        return _result(name, False, f"{name} does not hold the records written")
    return _result(name, comment=f"the fleet's DNS records were written to {name}", changes=changes)
