"""
What a mail host tells the rest of its fleet, and the DNS records made of it.

Each minion with ``postfix:fleet:role`` publishes one record in the Salt
mine under :py:data:`MINE_NAME` (the ``postfix_fleet.published`` state sends
it): its role, MX priority, address, host name, the name MX records point at
and the domains it serves. :py:func:`records` turns the records of a fleet
into the MX and A records of every domain (equal names round-robin over
their addresses); :py:func:`zone_text` writes them in the syntax of dnsmasq
or unbound. All of it is pure: nothing here reads the installed software.
"""

import ipaddress
import re

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "postfix_fleet"

#: the mine function name the fleet's records are published under
MINE_NAME = "postfix_fleet"
ROLES = ("database", "primary", "backup")
#: the roles that receive mail and get MX records
MAIL_ROLES = ("primary", "backup")
DEFAULT_PRIORITY = {"primary": 10, "backup": 20}
BACKENDS = ("dnsmasq", "unbound")
RECORD_TTL = 300
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


def __virtual__():
    return __virtualname__


def _hostname(field, value):
    name = str(value or "").lower().rstrip(".")
    if not _HOSTNAME.match(name):
        raise SaltInvocationError(f"postfix:fleet:{field}: {value!r} is not a fully-qualified host name")
    return name


def member(role, address, hostname, mx_priority=None, mx_name=None, domains=None):
    """
    The fleet record of this minion, validated: what ``mine.send`` stores.

    role
        ``primary`` (holds the mailboxes), ``backup`` (backup MX) or
        ``database`` (runs the postfixadmin database, no mail).
    address
        The IPv4 address MX records lead to.
    hostname
        The host's own name (an A record to ``address``).
    mx_priority
        The MX preference (null: 10 for a primary, 20 for a backup).
    mx_name
        The name MX records point at (null: ``hostname``); members sharing
        one get a round-robin A record.
    domains
        The mail domains served (a backup with none serves every domain of
        the fleet's primaries).

    CLI Example:

    .. code-block:: bash

        salt mx1 postfix_fleet.member primary 192.0.2.10 mx1.example.com domains='[example.com]'
    """
    if role not in ROLES:
        raise SaltInvocationError(f"postfix:fleet:role must be one of {', '.join(ROLES)}, not {role!r}")
    try:
        address = str(ipaddress.IPv4Address(str(address)))
    except ValueError:
        raise SaltInvocationError(f"postfix:fleet:address: {address!r} is not an IPv4 address") from None
    hostname = _hostname("hostname", hostname)
    if mx_priority is None:
        mx_priority = DEFAULT_PRIORITY.get(role, 0)
    if isinstance(mx_priority, bool) or not isinstance(mx_priority, int) or not 0 <= mx_priority <= 65535:
        raise SaltInvocationError(f"postfix:fleet:mx_priority: {mx_priority!r} is not an integer 0-65535")
    if domains is None:
        domains = []
    if isinstance(domains, str) or not isinstance(domains, (list, tuple)):
        raise SaltInvocationError(f"postfix:fleet:domains must be a list of domain names, not {domains!r}")
    return {
        "role": role,
        "address": address,
        "hostname": hostname,
        "mx_priority": mx_priority,
        "mx_name": _hostname("mx_name", mx_name) if mx_name else hostname,
        "domains": sorted({_hostname("domains", domain) for domain in domains}),
    }


def rollout():
    """
    What ``postfix.orch.rollout`` needs to know of this minion, from its
    pillar: ``{"role": ..., "states": [...]}`` (role None outside a fleet;
    states None: the rollout's default for the role). Plain values, not
    the pillar itself (Salt masks pillar data in command returns).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_fleet.rollout
    """
    fleet = (__pillar__.get("postfix") or {}).get("fleet") or {}  # pillar.get would return it masked
    states = fleet.get("states")
    return {"role": None if fleet.get("role") is None else str(fleet["role"]),
            "states": None if states is None else [str(sls) for sls in states]}


def members(tgt="*", tgt_type="glob"):
    """
    The fleet records the mine holds for the minions TGT matches:
    ``{minion id: record}``.

    CLI Example:

    .. code-block:: bash

        salt dns1 postfix_fleet.members
        salt dns1 postfix_fleet.members 'mx*'
    """
    return __salt__["mine.get"](tgt, MINE_NAME, tgt_type=tgt_type)


def records(fleet, domains=None):
    """
    The MX and A records of every domain of FLEET (``{minion id: record}``,
    as :py:func:`members` returns): ``{"mx": {domain: [[priority, name]]},
    "a": {name: [address]}}``. DOMAINS limits them to those (default: every
    domain a primary serves). Raises ``CommandExecutionError`` when the
    fleet has no primary for a domain: a zone made of an empty set would
    send the domain's mail nowhere.

    CLI Example:

    .. code-block:: bash

        salt dns1 postfix_fleet.records "$(salt-call --out=json postfix_fleet.members)"
    """
    mail_hosts = {minion: record for minion, record in sorted(fleet.items())
                  if isinstance(record, dict) and record.get("role") in MAIL_ROLES}
    primaries = {minion: record for minion, record in mail_hosts.items() if record["role"] == "primary"}
    if not primaries:
        raise CommandExecutionError(
            f"no primary MX has published its fleet record in the mine yet (seen: {sorted(fleet) or 'none'}); "
            "apply postfix to the primaries first"
        )
    wanted = sorted({domain for record in primaries.values() for domain in record["domains"]}
                    if domains is None else {_hostname("dns:domains", domain) for domain in domains})
    exchangers = {}
    addresses = {}
    for domain in wanted:
        served_by = [record for record in mail_hosts.values()
                     if domain in record["domains"] or (record["role"] == "backup" and not record["domains"])]
        if not any(record["role"] == "primary" for record in served_by):
            raise CommandExecutionError(f"no primary MX in the mine serves {domain} (it would have no MX to deliver to)")
        exchangers[domain] = sorted({(record["mx_priority"], record["mx_name"]) for record in served_by})
        for record in served_by:
            addresses.setdefault(record["mx_name"], set()).add(record["address"])
            addresses.setdefault(record["hostname"], set()).add(record["address"])
    return {
        "mx": {domain: [list(pair) for pair in pairs] for domain, pairs in exchangers.items()},
        "a": {name: sorted(found, key=ipaddress.IPv4Address) for name, found in sorted(addresses.items())},
    }


def zone_text(zone, backend):
    """
    The records of ZONE (:py:func:`records`) as a configuration fragment
    BACKEND (``dnsmasq`` or ``unbound``) includes.

    CLI Example:

    .. code-block:: bash

        salt dns1 postfix_fleet.zone_text '{"mx": {}, "a": {}}' unbound
    """
    if backend == "dnsmasq":
        lines = [f"host-record={name},{address}" for name, found in zone["a"].items() for address in found]
        lines += [f"mx-host={domain},{name},{priority}"
                  for domain, pairs in zone["mx"].items() for priority, name in pairs]
    elif backend == "unbound":
        lines = ["server:"]
        lines += [f'  local-data: "{name}. {RECORD_TTL} IN A {address}"'
                  for name, found in zone["a"].items() for address in found]
        lines += [f'  local-data: "{domain}. {RECORD_TTL} IN MX {priority} {name}."'
                  for domain, pairs in zone["mx"].items() for priority, name in pairs]
    else:
        raise SaltInvocationError(f"the DNS backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    header = "# Managed by Salt (postfix formula, postfix_fleet.records_managed): the fleet's MX and A records"
    return "\n".join([header, *lines]) + "\n"
