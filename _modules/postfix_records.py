"""
Translate the formula's pillar (the ``postfix`` tree) into Postfix records.

``main`` gives the main.cf parameters and ``master`` the master.cf services
the formula applies, each as one batch: defaults and enabled features first,
the raw ``postfix:main`` / ``postfix:master`` pillar merged last. Bad pillar
raises ``SaltInvocationError`` naming the pillar key, so a state file that
renders these records fails before anything is applied.

The translation is pure: it reads the settings and the grains
(``mem_total`` for ``process_limit: auto``), never the installed software, so
it works on a minion where Postfix is not installed yet. Facts only the
installed Postfix knows are checked by states when they run: whether it
carries the VDA quota patch (``postconf.expected`` in postfix.package) and
which proxied maps its default ``proxy_read_maps`` leaves out
(``postconf.parameters`` with ``extend_proxy_read_maps``).
"""

import math
import re

from salt.exceptions import SaltInvocationError

__virtualname__ = "postfix_records"

#: smtpd_helo_restrictions presets from the source document, in today's names
HELO_PRESETS = {
    "strict": [
        "permit_sasl_authenticated",
        "reject_invalid_helo_hostname",
        "reject_unknown_helo_hostname",
        "reject_non_fqdn_helo_hostname",
    ],
    "safe": ["permit_naked_ip_address", "reject_invalid_helo_hostname"],
    "mynetworks": [
        "permit_mynetworks",
        "reject_invalid_helo_hostname",
        "reject_unknown_helo_hostname",
        "reject_non_fqdn_helo_hostname",
    ],
}

#: the document's (pre-2.3) HELO restriction names and what Postfix calls them today
TODAYS_HELO_NAMES = {
    "reject_invalid_hostname": "reject_invalid_helo_hostname",
    "reject_unknown_hostname": "reject_unknown_helo_hostname",
    "reject_non_fqdn_hostname": "reject_non_fqdn_helo_hostname",
}

#: Postfix's access restriction names (postconf(5), SMTPD_ACCESS_README), today's and
#: the old ones it still takes; a list item may also be a lookup table (type:name)
RESTRICTIONS = frozenset("""
    permit defer reject warn_if_reject defer_if_permit defer_if_reject sleep
    permit_mynetworks permit_sasl_authenticated permit_inet_interfaces permit_naked_ip_address
    permit_tls_clientcerts permit_tls_all_clientcerts permit_mx_backup permit_auth_destination
    permit_dnswl_client permit_rhswl_client
    reject_unauth_destination defer_unauth_destination reject_unauth_pipelining reject_plaintext_session
    reject_unknown_client_hostname reject_unknown_reverse_client_hostname reject_unknown_forward_client_hostname
    reject_unknown_client reject_rbl_client reject_rhsbl_client reject_rhsbl_reverse_client reject_rhsbl_helo
    reject_rhsbl_sender reject_rhsbl_recipient reject_maps_rbl reject_rbl reject_rhsbl
    reject_invalid_helo_hostname reject_non_fqdn_helo_hostname reject_unknown_helo_hostname
    reject_invalid_hostname reject_non_fqdn_hostname reject_unknown_hostname
    reject_non_fqdn_sender reject_non_fqdn_recipient reject_unknown_sender_domain reject_unknown_recipient_domain
    reject_unlisted_sender reject_unlisted_recipient reject_unverified_sender reject_unverified_recipient
    reject_sender_login_mismatch reject_authenticated_sender_login_mismatch reject_known_sender_login_mismatch
    reject_unauthenticated_sender_login_mismatch reject_multi_recipient_bounce reject_non_fqdn_address
    check_policy_service check_client_access check_reverse_client_hostname_access check_client_a_access
    check_client_mx_access check_client_ns_access check_reverse_client_hostname_a_access
    check_reverse_client_hostname_mx_access check_reverse_client_hostname_ns_access check_helo_access
    check_helo_a_access check_helo_mx_access check_helo_ns_access check_sender_access check_sender_a_access
    check_sender_mx_access check_sender_ns_access check_recipient_access check_recipient_a_access
    check_recipient_mx_access check_recipient_ns_access check_ccert_access check_sasl_access
    check_etrn_access check_address_map
""".split())

#: the largest mailbox quota (bytes) the document deems usable
MAX_QUOTA = 9223372036854774784

#: pillar postfix:quota:vda keys -> the VDA patch's main.cf parameters
VDA_PARAMETERS = {
    "limit_inbox": "virtual_mailbox_limit_inbox",
    "limit_override": "virtual_mailbox_limit_override",
    "maildir_extended": "virtual_maildir_extended",
    "overquota_bounce": "virtual_overquota_bounce",
    "trash_count": "virtual_trash_count",
    "trash_name": "virtual_trash_name",
    "maildir_filter": "virtual_maildir_filter",
}

#: every pgsql lookup table the formula can write, by the feature that uses it
TABLES_BY_FEATURE = {
    "relay": ("relay_domains", "relay_recipient_maps"),
    "postfixadmin": (
        "virtual_mailbox_domains",
        "virtual_mailbox_maps",
        "virtual_alias_domain_mailbox_maps",
        "virtual_alias_maps",
        "virtual_alias_domain_maps",
        "virtual_alias_domain_catchall_maps",
    ),
    "vda": ("virtual_mailbox_limit_maps",),
}

#: main.cf parameters only other states may set, and the pillar key that sets them
RESERVED_MAIN = {"queue_directory": "performance:queue:directory"}

SUBMISSION_SERVICE = "submission/inet"
BANNER_PATTERN = re.compile(
    r"^(\$myhostname|\$\{myhostname\}|\$\(myhostname\)|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+) ESMTP( |$)"
)
SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")


def __virtual__():
    return True


def _invalid(key, problem, value):
    raise SaltInvocationError(f"pillar postfix:{key}: {problem}, got {value!r}")


def _yes_no(key, value):
    if not isinstance(value, bool):
        _invalid(key, "must be true or false", value)
    return "yes" if value else "no"


def _positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _invalid(key, "must be a positive integer", value)
    return value


def _get(settings, key):
    """The pillar value at ``key`` (``a:b:c`` under ``postfix``); defaults.yaml provides every key."""
    value = settings
    for part in key.split(":"):
        if not isinstance(value, dict) or part not in value:
            raise SaltInvocationError(f"pillar postfix:{key} is missing")
        value = value[part]
    return value


def _mapping(settings, key):
    value = _get(settings, key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        _invalid(key, "must be a mapping", value)
    return value


def _enabled(settings, name):
    return _yes_no(f"{name}:enabled", _get(settings, f"{name}:enabled")) == "yes"


def _restriction_list(key, value, classes=()):
    """A non-empty list of restrictions whose names Postfix knows (or lookup tables,
    or restriction CLASSES): an unknown name would make smtpd answer every RCPT
    with 451 4.3.5 "Server configuration error"."""
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        _invalid(key, "must be a non-empty list of restrictions", value)
    for item in value:
        word = item.split()[0]
        if word not in RESTRICTIONS and ":" not in word and word not in classes:
            _invalid(key, f"{word} is not a Postfix restriction, lookup table or smtpd_restriction_classes name",
                     value)
        if any(ord(character) < 32 or ord(character) == 127 for character in item):
            _invalid(key, "restrictions must not contain control characters", value)
    return value


def merge(*layers):
    """
    Merge dicts recursively, later layers winning; ``None`` values are kept
    (in main.cf records they mean "remove the parameter").

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.merge '{"a": {"b": 1}}' '{"a": {"c": 2}}'
    """
    merged = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def helo_restrictions(value):
    """
    Expand a ``hardening:helo_restrictions`` setting (a preset name or a list)
    into the restriction list, with the document's old names replaced by
    today's (``reject_invalid_hostname`` -> ``reject_invalid_helo_hostname``).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.helo_restrictions strict
    """
    key = "hardening:helo_restrictions"
    if isinstance(value, str):
        if value not in HELO_PRESETS:
            _invalid(key, f"unknown preset (known: {', '.join(sorted(HELO_PRESETS))})", value)
        return list(HELO_PRESETS[value])
    return [TODAYS_HELO_NAMES.get(item, item) for item in _restriction_list(key, value)]


def _banner(value):
    if not isinstance(value, str) or "\n" in value or not BANNER_PATTERN.match(value):
        _invalid("hardening:banner", "must start with the host name ($myhostname) followed by ESMTP", value)
    return value


def _hardening(settings):
    params = {
        "smtpd_helo_required": _yes_no("hardening:helo_required", _get(settings, "hardening:helo_required")),
        "smtpd_helo_restrictions": ", ".join(helo_restrictions(_get(settings, "hardening:helo_restrictions"))),
        "disable_vrfy_command": _yes_no("hardening:disable_vrfy", _get(settings, "hardening:disable_vrfy")),
        "message_size_limit": str(
            _positive_int("hardening:message_size_limit", _get(settings, "hardening:message_size_limit"))
        ),
    }
    banner = _get(settings, "hardening:banner")
    if banner is not None:
        params["smtpd_banner"] = _banner(banner)
    return params


def process_limit(settings, mem_total=None):
    """
    The ``default_process_limit`` for the pillar ``settings`` (``performance`` section).

    A number is used as given. ``auto`` applies the document's sizing rule:
    every process's memory times the limit must fit in the memory left to
    Postfix, so ``limit = floor(mem_total_MB * memory_share /
    process_memory_mb)``, at least 1. ``mem_total`` (MB) defaults to the
    ``mem_total`` grain.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.process_limit '{"performance": {"process_limit": "auto", "process_memory_mb": 16, "memory_share": 0.5}}'
    """
    limit = _get(settings, "performance:process_limit")
    if limit != "auto":
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            _invalid("performance:process_limit", "must be a positive integer or auto", limit)
        return limit
    memory_mb = _positive_int("performance:process_memory_mb", _get(settings, "performance:process_memory_mb"))
    share = _get(settings, "performance:memory_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        _invalid("performance:memory_share", "must be a fraction in (0, 1]", share)
    if mem_total is None:
        mem_total = __grains__["mem_total"]
    return max(1, math.floor(mem_total * share / memory_mb))


def _performance(settings, mem_total):
    return {
        "biff": _yes_no("performance:biff", _get(settings, "performance:biff")),
        "default_process_limit": str(process_limit(settings, mem_total)),
    }


def queue_directory(settings):
    """
    The queue directory Postfix uses once the formula has run: the one
    ``performance:queue:directory`` moves it to, else the OS's
    (``lookup:queue_directory``; postfix.package checks that the installed
    Postfix agrees). Dovecot's sockets live there.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.queue_directory '{"performance": {"queue": {"directory": null}}, "lookup": {"queue_directory": "/var/spool/postfix"}}'
    """
    return _get(settings, "performance:queue:directory") or _get(settings, "lookup:queue_directory")


def tables_dir(settings):
    """
    The directory holding the pgsql lookup table files:
    ``postfixadmin:tables_dir``, by default ``<config_dir>/pgsql``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.tables_dir '{"config_dir": "/etc/postfix", "postfixadmin": {"tables_dir": null}}'
    """
    return _get(settings, "postfixadmin:tables_dir") or f"{_get(settings, 'config_dir')}/pgsql"


def _map(settings, table):
    proxied = _yes_no("postfixadmin:proxy", _get(settings, "postfixadmin:proxy")) == "yes"
    prefix = "proxy:pgsql:" if proxied else "pgsql:"
    return f"{prefix}{tables_dir(settings)}/{table}.cf"


def _maps(settings, *tables):
    return ", ".join(_map(settings, table) for table in tables)


def quota_backend(settings):
    """
    The quota backend in use: ``vda`` or ``dovecot``. ``auto`` picks ``vda``
    only where the OS's Postfix package carries the VDA patch
    (``lookup:vda_builtin``), else ``dovecot``. Whether the installed Postfix
    really has the patch is checked when the states run (see
    :py:func:`vda_check`).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.quota_backend '{"lookup": {"vda_builtin": false}, "quota": {"backend": "auto"}}'
    """
    backend = _get(settings, "quota:backend")
    if backend not in ("auto", "vda", "dovecot"):
        _invalid("quota:backend", "must be auto, vda or dovecot", backend)
    if backend != "auto":
        return backend
    builtin = _get(settings, "lookup:vda_builtin")
    _yes_no("lookup:vda_builtin", builtin)
    return "vda" if builtin else "dovecot"


def vda_check(settings):
    """
    What ``postconf.expected`` must find in the installed Postfix when the
    ``vda`` quota backend is in use: ``{"parameters": [...], "reason": text}``
    naming the pillar key and where this OS gets the patch, or ``None`` for
    the other backends.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.vda_check '{"lookup": {"vda_patch": null}, "quota": {"enabled": true, "backend": "vda"}}'
    """
    if not _enabled(settings, "quota") or quota_backend(settings) != "vda":
        return None
    hint = _get(settings, "lookup:vda_patch")
    return {
        "known": ["virtual_mailbox_limit_maps"],
        "reason": "pillar postfix:quota:backend: vda needs a Postfix built with the VDA quota patch"
        + (f" ({hint})" if hint else ""),
    }


def _quota_message(settings):
    message = _get(settings, "quota:message")
    if not isinstance(message, str) or not message or "\n" in message:
        _invalid("quota:message", "must be a one-line text", message)
    return message


def _vda(settings):
    params = {"virtual_mailbox_limit_maps": _map(settings, "virtual_mailbox_limit_maps")}
    for key, parameter in VDA_PARAMETERS.items():
        value = _get(settings, f"quota:vda:{key}")
        if key == "trash_name":
            if not isinstance(value, str) or not value:
                _invalid("quota:vda:trash_name", "must be a folder name", value)
            params[parameter] = value
        else:
            params[parameter] = _yes_no(f"quota:vda:{key}", value)
    params["virtual_maildir_limit_message"] = _quota_message(settings)
    params["mailbox_size_limit"] = "0"
    return params


def _policy_quota(settings):
    _quota_message(settings)
    quota_status = (
        f"inet:{_get(settings, 'dovecot:quota_status_listen:address')}:"
        f"{_get(settings, 'dovecot:quota_status_listen:port')}"
    )
    service = _get(settings, "quota:policy_service")
    if service not in (None, quota_status):
        raise SaltInvocationError(
            f"pillar postfix:quota:policy_service ({service}) must be {quota_status} or null: "
            "postfix:dovecot:quota_status_listen is where Dovecot's quota-status listens"
        )
    return {"smtpd_recipient_restrictions": f"check_policy_service {quota_status}"}


def _relay(settings):
    restrictions = _restriction_list("relay:restrictions", _get(settings, "relay:restrictions"))
    if restrictions[-1] != "reject_unauth_destination":
        _invalid("relay:restrictions", "must end with reject_unauth_destination", restrictions)
    return {
        "relay_domains": _map(settings, "relay_domains"),
        "relay_recipient_maps": _map(settings, "relay_recipient_maps"),
        "smtpd_relay_restrictions": ", ".join(restrictions),
    }


def _mailbox_quotas(settings):
    mailboxes = _get(settings, "postfixadmin:mailboxes") or {}
    for address, fields in mailboxes.items():
        quota = (fields or {}).get("quota", 0)
        if isinstance(quota, bool) or not isinstance(quota, int) or not 0 <= quota <= MAX_QUOTA:
            _invalid(f"postfixadmin:mailboxes:{address}:quota", f"must be 0 (unlimited) to {MAX_QUOTA} bytes", quota)


def _virtual(settings, lmtp):
    params = {
        "virtual_mailbox_domains": _map(settings, "virtual_mailbox_domains"),
        # postfixadmin's alias domains resolve through their target domain's users
        "virtual_mailbox_maps": _maps(settings, "virtual_mailbox_maps", "virtual_alias_domain_mailbox_maps"),
        "virtual_alias_maps": _maps(
            settings, "virtual_alias_maps", "virtual_alias_domain_maps", "virtual_alias_domain_catchall_maps"
        ),
        "virtual_mailbox_base": _get(settings, "dovecot:mail_root"),
        "virtual_uid_maps": f"static:{_positive_int('dovecot:vmail_uid', _get(settings, 'dovecot:vmail_uid'))}",
        "virtual_gid_maps": f"static:{_positive_int('dovecot:vmail_gid', _get(settings, 'dovecot:vmail_gid'))}",
    }
    if lmtp:
        params["virtual_transport"] = f"lmtp:unix:{_get(settings, 'dovecot:lmtp_socket')}"
    return params


def _raw_main(settings):
    raw = _mapping(settings, "main")
    for name, key in RESERVED_MAIN.items():
        if name in raw:
            _invalid(f"main:{name}", f"is set only through postfix:{key}", raw[name])
    return raw


def main(settings, mem_total=None):
    """
    The main.cf parameters for the formula's ``settings`` (the whole
    ``postfix`` tree map.jinja builds from defaults.yaml, the OS lookup and
    the pillar): hardening and performance always, then the enabled features
    (relay, postfixadmin, dovecot, quota), then ``settings["main"]`` merged
    last (a ``None`` value removes a parameter; ``queue_directory`` is refused:
    only postfix.performance.queue moves the queue).

    ``mem_total`` (MB) is for ``process_limit: auto``; by default the
    ``mem_total`` grain.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.main "$(cat postfix-settings.json)"
    """
    _mailbox_quotas(settings)
    params = {**_hardening(settings), **_performance(settings, mem_total)}
    if _enabled(settings, "relay"):
        params.update(_relay(settings))
    backend = quota_backend(settings) if _enabled(settings, "quota") else None
    if _enabled(settings, "postfixadmin"):
        params.update(_virtual(settings, lmtp=_enabled(settings, "dovecot") and backend != "vda"))
    if backend == "vda":
        params.update(_vda(settings))
    elif backend == "dovecot":
        params.update(_policy_quota(settings))
    return merge(params, _raw_main(settings))


def _sasl_path(settings):
    """submission:sasl:path, by default dovecot:auth_socket, which it must equal
    when the formula's Dovecot is the SASL server."""
    path = _get(settings, "submission:sasl:path")
    auth_socket = _get(settings, "dovecot:auth_socket")
    if path is None:
        return auth_socket
    uses_our_dovecot = _get(settings, "submission:sasl:type") == "dovecot" and _enabled(settings, "dovecot")
    if uses_our_dovecot and path != auth_socket:
        _invalid(
            "submission:sasl:path",
            f"must be null or {auth_socket} (postfix:dovecot:auth_socket, where the formula's Dovecot listens)",
            path,
        )
    return path


def _submission_options(settings):
    level = _get(settings, "submission:tls_security_level")
    if level not in ("may", "encrypt"):
        _invalid("submission:tls_security_level", "must be may or encrypt", level)
    restrictions = _restriction_list("submission:client_restrictions", _get(settings, "submission:client_restrictions"))
    options = {
        "smtpd_tls_security_level": level,
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_client_restrictions": ",".join(restrictions),
        "smtpd_sasl_type": _get(settings, "submission:sasl:type"),
        "smtpd_sasl_path": _sasl_path(settings),
    }
    return merge(options, _mapping(settings, "submission:options"))


def _without_null_options(services):
    """A null -o value drops the option; the others go to postconf as given (it
    writes true/false as yes/no and joins lists)."""
    cleaned = {}
    for key, record in services.items():
        options = record.get("options")
        if isinstance(options, dict):
            record = {**record, "options": {name: value for name, value in options.items() if value is not None}}
        cleaned[key] = record
    return cleaned


def _check_services(services):
    for name, record in services.items():
        service_type = name.rpartition("/")[2]
        if "/" not in name or service_type not in SERVICE_TYPES:
            _invalid(f"master:{name}", f"service names are NAME/TYPE with TYPE one of {', '.join(SERVICE_TYPES)}", name)
        if not isinstance(record, dict):
            _invalid(f"master:{name}", "must be a mapping of service fields", record)


def master(settings):
    """
    The master.cf services for the formula's pillar ``settings``, keyed
    ``name/type`` in the shape ``postconf.services`` takes: the submission
    service (R1) when enabled, then ``settings["master"]`` merged last
    (``enabled: false`` removes a service).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.master '{"submission": {"enabled": false}, "master": {"smtps/inet": {"enabled": false}}}'
    """
    services = {}
    if _enabled(settings, "submission"):
        services[SUBMISSION_SERVICE] = {
            "private": "n",
            "unpriv": "-",
            "chroot": "n",
            "wakeup": "-",
            "maxproc": "-",
            "command": "smtpd",
            "options": _submission_options(settings),
        }
    raw = _mapping(settings, "master")
    _check_services(raw)
    return _without_null_options(merge(services, raw))


def feature_tables(feature):
    """
    The names of the pgsql lookup tables a feature writes (``relay``,
    ``postfixadmin`` or ``vda``); the formula's states write one file each.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.feature_tables relay
    """
    if feature not in TABLES_BY_FEATURE:
        raise SaltInvocationError(f"unknown feature {feature!r} (known: {', '.join(TABLES_BY_FEATURE)})")
    return list(TABLES_BY_FEATURE[feature])


def served_tables(settings):
    """
    The lookup table files main.cf names for the enabled features (relay,
    postfixadmin, the vda quota backend): what Postfix must be reloaded
    for when one changes.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.served_tables "$(cat postfix-settings.json)"
    """
    features = [name for name in ("relay", "postfixadmin") if _enabled(settings, name)]
    if _enabled(settings, "quota") and quota_backend(settings) == "vda":
        features.append("vda")
    directory = tables_dir(settings)
    return [f"{directory}/{table}.cf" for feature in features for table in TABLES_BY_FEATURE[feature]]


def all_tables(settings):
    """
    Every lookup table file the formula can write, ``{table: path}``
    (what ``postfix.clean`` removes).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.all_tables '{"config_dir": "/etc/postfix", "postfixadmin": {"tables_dir": null}}'
    """
    directory = tables_dir(settings)
    return {table: f"{directory}/{table}.cf" for names in TABLES_BY_FEATURE.values() for table in names}
