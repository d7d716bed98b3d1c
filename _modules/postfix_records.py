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

import importlib
import math
import re

from salt.exceptions import SaltInvocationError

# The syntax the postconf module checks its input with, and how a bad pillar value is
# named. Not Salt modules (the loader skips names starting with "_"), so reloaded
# here: code saltutil.sync_modules brings then replaces what a running minion
# imported before.
importlib.reload(importlib.import_module("_postconf_syntax"))
importlib.reload(importlib.import_module("_postfix_pillar"))
from _postconf_syntax import SERVICE_TYPES, wanted_parameters, wanted_service  # noqa: E402
from _postfix_pillar import checked_as, invalid  # noqa: E402

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

#: restrictions followed by one argument (a table, a policy service, a DNS list, seconds)
RESTRICTIONS_WITH_ARGUMENT = frozenset(
    {name for name in RESTRICTIONS if name.startswith("check_")}
    | {"reject_rbl_client", "reject_rhsbl_client", "reject_rhsbl_reverse_client", "reject_rhsbl_helo",
       "reject_rhsbl_sender", "reject_rhsbl_recipient", "permit_dnswl_client", "permit_rhswl_client", "sleep"}
)

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
    "quota_status": ("quota_check",),
}

#: the restriction class the quota check returns for a mailbox near its quota
QUOTA_STATUS_CLASS = "quota_status"

#: main.cf parameters only other states may set, and the pillar key that sets them
RESERVED_MAIN = {"queue_directory": "performance:queue:directory"}

SUBMISSION_SERVICE = "submission/inet"
BANNER_PATTERN = re.compile(
    r"^(\$myhostname|\$\{myhostname\}|\$\(myhostname\)|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+) ESMTP( |$)"
)


def __virtual__():
    return True


def _yes_no(key, value):
    if not isinstance(value, bool):
        invalid(key, "must be true or false", value)
    return "yes" if value else "no"


def _positive_int(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        invalid(key, "must be a positive integer", value)
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
        invalid(key, "must be a mapping", value)
    return value


def _enabled(settings, name):
    return _yes_no(f"{name}:enabled", _get(settings, f"{name}:enabled")) == "yes"


def _items(params, name):
    """The comma-separated items of main.cf parameter NAME in PARAMS (none when unset)."""
    return [item.strip() for item in (params.get(name) or "").split(",") if item.strip()]


def _restriction_list(key, value, classes=()):
    """A non-empty list of restrictions whose names Postfix knows (or lookup tables,
    or restriction CLASSES): an unknown name would make smtpd answer every RCPT
    with 451 4.3.5 "Server configuration error"."""
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        invalid(key, "must be a non-empty list of restrictions", value)
    for item in value:
        if any(ord(character) < 32 or ord(character) == 127 for character in item):
            invalid(key, "restrictions must not contain control characters", value)
        words = iter(item.split())
        for word in words:  # as smtpd reads them: a restriction, and its argument where it takes one
            if word not in RESTRICTIONS and ":" not in word and word not in classes:
                invalid(key, f"{word} is not a Postfix restriction, lookup table or smtpd_restriction_classes name",
                        value)
            if word in RESTRICTIONS_WITH_ARGUMENT:
                next(words, None)  # (or the next item's first word, as smtpd reads commas as spaces)
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
            invalid(key, f"unknown preset (known: {', '.join(sorted(HELO_PRESETS))})", value)
        return list(HELO_PRESETS[value])
    return [TODAYS_HELO_NAMES.get(item, item) for item in _restriction_list(key, value)]


def _banner(value):
    if not isinstance(value, str) or "\n" in value or not BANNER_PATTERN.match(value):
        invalid("hardening:banner", "must start with the host name ($myhostname) followed by ESMTP", value)
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
            invalid("performance:process_limit", "must be a positive integer or auto", limit)
        return limit
    memory_mb = _positive_int("performance:process_memory_mb", _get(settings, "performance:process_memory_mb"))
    share = _get(settings, "performance:memory_share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        invalid("performance:memory_share", "must be a fraction in (0, 1]", share)
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
        invalid("quota:backend", "must be auto, vda or dovecot", backend)
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
        invalid("quota:message", "must be a one-line text", message)
    return message


def _vda(settings):
    params = {"virtual_mailbox_limit_maps": _map(settings, "virtual_mailbox_limit_maps")}
    for key, parameter in VDA_PARAMETERS.items():
        value = _get(settings, f"quota:vda:{key}")
        if key == "trash_name":
            if not isinstance(value, str) or not value:
                invalid("quota:vda:trash_name", "must be a folder name", value)
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
    # quota-status costs ~2 ms of CPU per request (Dovecot 2.3 rereads its
    # whole configuration for each): only mailboxes near their quota are asked
    # (main() adds the class to smtpd_restriction_classes, after postfix:main)
    return {
        QUOTA_STATUS_CLASS: f"check_policy_service {quota_status}",
        "smtpd_recipient_restrictions": ", ".join(_quota_restrictions(settings)),
    }


def _quota_restrictions(settings):
    """The quota check (OK for mailboxes with room, quota_status near their quota),
    then Postfix's own check for every other recipient (aliases, unknown users)."""
    return [f"check_recipient_access {_map(settings, 'quota_check')}", "reject_unlisted_recipient"]


def _recipient_validation(settings, params):
    """
    PARAMS with ``smtpd_reject_unlisted_recipient = no`` when
    ``smtpd_recipient_restrictions`` is the quota check alone: its OK vouches
    for the mailbox and its reject_unlisted_recipient checks everyone else, so
    Postfix's implicit check after the list would only look the mailbox up
    again. Any other list (policy services' permits before the quota check, or
    postfix:main's own) keeps Postfix's check, as does postfix:main setting it.
    """
    if "smtpd_reject_unlisted_recipient" in _mapping(settings, "main"):
        return params
    if _items(params, "smtpd_recipient_restrictions") == _quota_restrictions(settings):
        return {**params, "smtpd_reject_unlisted_recipient": "no"}
    return params


def _with_restriction_class(params, name):
    """PARAMS with NAME among smtpd_restriction_classes (postfix:main may list its own)."""
    classes = _items(params, "smtpd_restriction_classes")
    if name not in classes:
        params = {**params, "smtpd_restriction_classes": ", ".join([*classes, name])}
    return params


def message_size_limit(settings):
    """
    The largest message Postfix takes, in bytes (0: no limit): ``postfix:main``'s
    ``message_size_limit`` where it sets one, else ``hardening:message_size_limit``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.message_size_limit '{"hardening": {"message_size_limit": 20971520}, "main": {}}'
    """
    raw = _mapping(settings, "main")
    if raw.get("message_size_limit") is None:
        return _positive_int("hardening:message_size_limit", _get(settings, "hardening:message_size_limit"))
    value = raw["message_size_limit"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        invalid("main:message_size_limit", "must be a number of bytes (0: no limit)", value)
    return value


def table_query(settings, query):
    """
    A queries.yaml query with ``$message_size_limit`` replaced by
    :py:func:`message_size_limit` (with no limit: by ``mailbox.quota``, so
    the quota check asks about every mailbox with a quota).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.table_query '{"hardening": {"message_size_limit": 10240000}, "main": {}}' 'SELECT $message_size_limit'
    """
    limit = message_size_limit(settings)
    return query.replace("$message_size_limit", str(limit) if limit else "mailbox.quota")


def _relay(settings):
    restrictions = _restriction_list("relay:restrictions", _get(settings, "relay:restrictions"))
    if restrictions[-1] != "reject_unauth_destination":
        invalid("relay:restrictions", "must end with reject_unauth_destination", restrictions)
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
            invalid(f"postfixadmin:mailboxes:{address}:quota", f"must be 0 (unlimited) to {MAX_QUOTA} bytes", quota)


def _virtual(settings, lmtp):
    params = {
        "virtual_mailbox_domains": _map(settings, "virtual_mailbox_domains"),
        # every postfixadmin domain is one of those: the default
        # ($virtual_alias_maps) would only look each domain up again
        "virtual_alias_domains": "",
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
            invalid(f"main:{name}", f"is set only through postfix:{key}", raw[name])
    return raw


def main(settings, mem_total=None):
    """
    The main.cf parameters for the formula's ``settings`` (the whole
    ``postfix`` tree map.jinja builds from defaults.yaml, the OS lookup and
    the pillar): hardening and performance always, then the enabled features
    (relay, postfixadmin, dovecot, quota), then ``settings["main"]`` merged
    last (a ``None`` value removes a parameter; ``queue_directory`` is refused:
    only postfix.performance.queue moves the queue). With the Dovecot quota
    check as the whole of ``smtpd_recipient_restrictions``, Postfix's implicit
    recipient check is off: the check validates mailboxes itself.

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
    params = merge(params, _raw_main(settings))
    if backend == "dovecot":
        params = _with_restriction_class(params, QUOTA_STATUS_CLASS)
    params = _recipient_validation(settings, with_everyday_features(settings, params))
    checked_as("main", wanted_parameters, params)
    return params


def _sasl_path(settings):
    """submission:sasl:path, by default dovecot:auth_socket, which it must equal
    when the formula's Dovecot is the SASL server."""
    path = _get(settings, "submission:sasl:path")
    auth_socket = _get(settings, "dovecot:auth_socket")
    if path is None:
        return auth_socket
    uses_our_dovecot = _get(settings, "submission:sasl:type") == "dovecot" and _enabled(settings, "dovecot")
    if uses_our_dovecot and path != auth_socket:
        invalid(
            "submission:sasl:path",
            f"must be null or {auth_socket} (postfix:dovecot:auth_socket, where the formula's Dovecot listens)",
            path,
        )
    return path


def _submission_options(settings):
    level = _get(settings, "submission:tls_security_level")
    if level not in ("may", "encrypt"):
        invalid("submission:tls_security_level", "must be may or encrypt", level)
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
            invalid(f"master:{name}", f"service names are NAME/TYPE with TYPE one of {', '.join(SERVICE_TYPES)}", name)
        if not isinstance(record, dict):
            invalid(f"master:{name}", "must be a mapping of service fields", record)


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
    services = _with_recipient_check(
        settings, _without_null_options(merge(services, services_with_map_references(settings, raw))))
    for key, record in services.items():
        origin = f"master:{key}" if key in raw else "submission" if key == SUBMISSION_SERVICE else "policy"
        checked_as(origin, wanted_service, key, record)
    return services


def _with_recipient_check(settings, services):
    """SERVICES, each with its own ``smtpd_recipient_restrictions`` given back
    Postfix's implicit recipient check (``-o smtpd_reject_unlisted_recipient=yes``)
    where main.cf turned it off for the quota check's list, which theirs replace."""
    if "smtpd_reject_unlisted_recipient" in _mapping(settings, "main"):
        return services
    if main(settings).get("smtpd_reject_unlisted_recipient") != "no":
        return services
    checked = {}
    for key, record in services.items():
        options = record.get("options")
        if isinstance(options, dict) and "smtpd_recipient_restrictions" in options:
            record = {**record, "options": {"smtpd_reject_unlisted_recipient": "yes", **options}}
        checked[key] = record
    return checked


def feature_tables(feature):
    """
    The names of the pgsql lookup tables a feature writes (``relay``,
    ``postfixadmin``, ``vda`` or ``quota_status``); the formula's states write one file each.

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
    postfixadmin, the quota backend's): what Postfix must be reloaded
    for when one changes.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.served_tables "$(cat postfix-settings.json)"
    """
    features = [name for name in ("relay", "postfixadmin") if _enabled(settings, name)]
    if _enabled(settings, "quota"):
        features.append("vda" if quota_backend(settings) == "vda" else "quota_status")
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


# --- TLS, relayhost, static maps, aliases (issue 11) --------------------------

#: Mozilla's server-side TLS recommendations for Postfix (ssl-config.mozilla.org), by profile
TLS_PROFILES = {
    "modern": {
        "smtpd_tls_protocols": ">=TLSv1.3",
        "smtpd_tls_mandatory_protocols": ">=TLSv1.3",
        "tls_preempt_cipherlist": "no",
    },
    "intermediate": {
        "smtpd_tls_protocols": ">=TLSv1.2",
        "smtpd_tls_mandatory_protocols": ">=TLSv1.2",
        "smtpd_tls_ciphers": "medium",
        "smtpd_tls_mandatory_ciphers": "medium",
        "tls_medium_cipherlist": (
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
            "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
        ),
        "tls_preempt_cipherlist": "no",
    },
    "legacy": {
        "smtpd_tls_protocols": ">=TLSv1",
        "smtpd_tls_mandatory_protocols": ">=TLSv1",
        "smtpd_tls_ciphers": "medium",
        "smtpd_tls_mandatory_ciphers": "medium",
        # OpenSSL 3 offers TLS 1.0/1.1 only at security level 0
        "tls_medium_cipherlist": (
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
            "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305:"
            "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
            "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
            "DHE-RSA-AES128-SHA256:DHE-RSA-AES256-SHA256:AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA256:"
            "AES256-SHA256:AES128-SHA:AES256-SHA:DES-CBC3-SHA:@SECLEVEL=0"
        ),
        "tls_preempt_cipherlist": "yes",
    },
}
TLS_OUTBOUND = ("may", "dane", "encrypt")
RELAYHOST_TLS = ("may", "encrypt", "secure", "verify", "dane")

#: map types postmap indexes (Postfix notices a rebuilt file by itself); the others need a reload
INDEXED_MAP_TYPES = ("lmdb", "hash", "cdb", "btree")
MAP_TYPES = (*INDEXED_MAP_TYPES, "pcre", "regexp", "cidr", "texthash")
MAP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: the secret map the relayhost's SASL credentials go into
RELAYHOST_MAP = "relayhost_sasl_passwd"
ALIASES_MAP = "aliases"


def _text(key, value, allow_none=True):
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value or "\n" in value:
        invalid(key, "must be a one-line text", value)
    return value


def tls_files(settings):
    """
    The server certificate and key the pillar's ``tls`` section gives
    Postfix: ``{"cert": path, "key": path, "written": bool}`` (``written``:
    the formula writes them, from ``cert_pem``/``key_pem`` or self-signed;
    their paths then default to ``<config_dir>/tls/server.crt|key``), or
    ``{}`` without a certificate. A certificate without its key (or the
    other way round) is refused naming the key.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.tls_files '{"config_dir": "/etc/postfix", "tls": {"cert": "/etc/ssl/mail.pem", "key": "/etc/ssl/mail.key", "cert_pem": null, "key_pem": null, "self_signed": {"enabled": false}}}'
    """
    cert = _text("tls:cert", _get(settings, "tls:cert"))
    key = _text("tls:key", _get(settings, "tls:key"))
    cert_pem = _get(settings, "tls:cert_pem")
    key_pem = _get(settings, "tls:key_pem")
    self_signed = _enabled(settings, "tls:self_signed")
    for name, value in (("cert_pem", cert_pem), ("key_pem", key_pem)):
        if value is not None and (not isinstance(value, str) or "-----BEGIN " not in value):
            invalid(f"tls:{name}", "must be PEM text", "(not PEM)")
    if isinstance(cert_pem, str) and "PRIVATE KEY" in cert_pem:
        raise SaltInvocationError("pillar postfix:tls:cert_pem: holds a private key (value not shown): the "
                                  "certificate file is world-readable; give the key as tls:key_pem")
    if (cert_pem is None) != (key_pem is None):
        missing = "key_pem" if key_pem is None else "cert_pem"
        invalid(f"tls:{missing}", "cert_pem and key_pem go together", None)
    written = cert_pem is not None or self_signed
    if cert_pem is not None and self_signed:
        invalid("tls:self_signed:enabled", "cannot be true together with cert_pem/key_pem", True)
    if not written:
        if cert is None and key is None:
            return {}
        if cert is None or key is None:
            invalid("tls:key" if key is None else "tls:cert", "tls:cert and tls:key go together", None)
    directory = f"{_get(settings, 'config_dir')}/tls"
    return {"cert": cert or f"{directory}/server.crt", "key": key or f"{directory}/server.key", "written": written}


def _tls(settings):
    outbound = _get(settings, "tls:outbound")
    if outbound not in (None, *TLS_OUTBOUND):
        invalid("tls:outbound", f"must be one of {', '.join(TLS_OUTBOUND)} or null", outbound)
    params = {"smtp_tls_security_level": outbound} if outbound else {}
    if outbound == "dane":
        params["smtp_dns_support_level"] = "dnssec"
    files = tls_files(settings)
    profile = _get(settings, "tls:profile")
    if profile not in TLS_PROFILES:
        invalid("tls:profile", f"must be one of {', '.join(TLS_PROFILES)}", profile)
    auth_only = _get(settings, "tls:auth_only")
    if auth_only is not None:
        _yes_no("tls:auth_only", auth_only)
    if not files:
        return params
    params.update(
        {
            "smtpd_tls_cert_file": files["cert"],
            "smtpd_tls_key_file": files["key"],
            "smtpd_tls_security_level": "may",
            "smtpd_tls_auth_only": "no" if auth_only is False else "yes",
            **TLS_PROFILES[profile],
        }
    )
    return params


def maps_dir(settings):
    """
    The directory the formula's static maps (``maps``, ``aliases``, the
    relayhost's credentials) are written to: ``<config_dir>/maps``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.maps_dir '{"config_dir": "/etc/postfix"}'
    """
    return f"{_get(settings, 'config_dir')}/maps"


def _map_value(key, value, secret=False):
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        value = ", ".join(value)
    if isinstance(value, bool) or isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str) or not value or "\n" in value:
        invalid(key, "must be a one-line text (or a list of them)", "(secret)" if secret else value)
    return value


def _map_key(key, entry_key, map_type, aliases=False):
    """An entry's key as the table file's line starts with it: postmap and postalias end
    the key at whitespace (at ':' in aliases), take a line starting with whitespace as
    the previous line's continuation, and one starting with '#' as a comment."""
    text = str(entry_key)
    if map_type in ("pcre", "regexp"):
        if not text.strip() or text != text.strip() or text.startswith("#"):
            invalid(f"{key}:entries:{text}", "a pattern must not be empty, start or end with whitespace, or "
                                              "start with #", text)
        return text
    if not text or text.startswith("#") or any(c.isspace() or (aliases and c == ":") for c in text):
        invalid(f"{key}:{text}" if aliases else f"{key}:entries:{text}",
                f"a key must not be empty, start with #, or contain whitespace{' or a colon' if aliases else ''} "
                "(the table file would read another key)", text)
    return text


def static_maps(settings):
    """
    Every static map the formula writes, by name: the pillar's ``maps``,
    ``aliases`` (name ``aliases``) and the relayhost's SASL credentials
    (``relayhost_sasl_passwd``), each ``{path, type, entries (list of
    [key, value]), mode, secret, indexed, reference, format}``. ``type``
    None means Postfix's ``default_database_type`` (read by the state when
    it runs); ``reference`` is how main.cf names the map.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.static_maps "$(cat postfix-settings.json)"
    """
    directory = maps_dir(settings)
    found = {}
    for name, spec in _mapping(settings, "maps").items():
        key = f"maps:{name}"
        if not isinstance(name, str) or not MAP_NAME.match(name) or name in (RELAYHOST_MAP, ALIASES_MAP):
            invalid(key, f"map names are letters, digits, '_', '.', '-' (not {RELAYHOST_MAP} or {ALIASES_MAP})", name)
        if not isinstance(spec, dict):
            raise SaltInvocationError(f"pillar postfix:{key}: must be a mapping with entries (and type, mode, "
                                      f"secret), got a {type(spec).__name__} (value not shown)")
        unknown = set(spec) - {"type", "entries", "mode", "secret"}
        if unknown:
            invalid(f"{key}:{sorted(unknown)[0]}", "unknown key (known: type, entries, mode, secret)", sorted(unknown)[0])
        map_type = spec.get("type")
        if map_type is not None and map_type not in MAP_TYPES:
            invalid(f"{key}:type", f"must be one of {', '.join(MAP_TYPES)} (or unset: default_database_type)", map_type)
        entries = spec.get("entries") or {}
        if not isinstance(entries, dict):
            raise SaltInvocationError(f"pillar postfix:{key}:entries: must be a mapping of key: value, got a "
                                      f"{type(entries).__name__} (value not shown)")
        secret = _yes_no(f"{key}:secret", spec.get("secret", False)) == "yes"
        mode = spec.get("mode")
        if mode is not None and not re.match(r"^0?[0-7]{3}$", str(mode)):
            invalid(f"{key}:mode", "must be an octal mode such as 0644", mode)
        if secret and mode not in (None, "0600", "600"):
            invalid(f"{key}:mode", "a secret map is always 0600", mode)
        found[name] = {
            "type": map_type,
            "entries": [
                [_map_key(key, k, map_type), _map_value(f"{key}:entries:{k}", v, secret)]
                for k, v in entries.items() if v is not None
            ],
            "mode": "0600" if secret else str(mode or "0644"),
            "secret": secret,
            "format": "map",
        }
    aliases = _mapping(settings, "aliases")
    if aliases:
        found[ALIASES_MAP] = {
            "type": None,
            "entries": [[_map_key("aliases", k, None, aliases=True), _map_value(f"aliases:{k}", v)]
                        for k, v in aliases.items() if v is not None],
            "mode": "0644",
            "secret": False,
            "format": "aliases",
        }
    relay = _relayhost_credentials(settings)
    if relay:
        found[RELAYHOST_MAP] = {"type": None, "entries": [relay], "mode": "0600", "secret": True, "format": "map"}
    for name, spec in found.items():
        spec["path"] = f"{directory}/{name}"
        spec["indexed"] = spec["type"] is None or spec["type"] in INDEXED_MAP_TYPES
        spec["reference"] = f"{spec['type'] or '${default_database_type}'}:{spec['path']}"
    return found


def _relayhost_credentials(settings):
    host = _text("relayhost:host", _get(settings, "relayhost:host"))
    username = _get(settings, "relayhost:username")
    password = _get(settings, "relayhost:password")
    if host is None:
        if username is not None or password is not None:
            invalid("relayhost:host", "is needed for relayhost:username/password", host)
        return None
    if (username is None) != (password is None):
        invalid("relayhost:password" if password is None else "relayhost:username", "username and password go together", None)
    if username is None:
        return None
    _text("relayhost:username", username, allow_none=False)
    if any(character.isspace() for character in host):
        invalid("relayhost:host", "must not contain whitespace with a username (it is the key of the password "
                                   "table's one line)", host)
    if ":" in username or any(character.isspace() for character in username):
        invalid("relayhost:username", "must not contain a colon or whitespace (Postfix reads the password table's "
                                       "value as username:password, cut at the first colon)", username)
    if not isinstance(password, str) or not password or "\n" in password:
        raise SaltInvocationError("pillar postfix:relayhost:password: must be a one-line text (value not shown)")
    if password != password.strip():
        raise SaltInvocationError("pillar postfix:relayhost:password: starts or ends with whitespace, which postmap "
                                  "would drop (value not shown)")
    return [host, f"{username}:{password}"]


def _relayhost(settings):
    host = _text("relayhost:host", _get(settings, "relayhost:host"))
    if host is None:
        return {}
    level = _get(settings, "relayhost:tls")
    if level not in RELAYHOST_TLS:
        invalid("relayhost:tls", f"must be one of {', '.join(RELAYHOST_TLS)}", level)
    params = {"relayhost": host, "smtp_tls_security_level": level}
    if _relayhost_credentials(settings):
        params.update(
            {
                "smtp_sasl_auth_enable": "yes",
                "smtp_sasl_password_maps": static_maps(settings)[RELAYHOST_MAP]["reference"],
                "smtp_sasl_security_options": "noanonymous",
                "smtp_sasl_tls_security_options": "noanonymous",
            }
        )
    return params


def _aliases(settings):
    aliases = static_maps(settings).get(ALIASES_MAP)
    if not aliases:
        return {}
    return {"alias_maps": aliases["reference"], "alias_database": aliases["reference"]}


def everyday_features(settings):
    """
    The main.cf parameters of TLS (``tls``: certificate, profile, outbound
    level), the smarthost (``relayhost``, which wins over ``tls:outbound``
    for ``smtp_tls_security_level``: all outbound mail goes to it) and
    ``aliases``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.everyday_features "$(cat postfix-settings.json)"
    """
    return {**_tls(settings), **_relayhost(settings), **_aliases(settings)}


MAP_REFERENCE = re.compile(r"(?:^|(?<=[\s,])|(?<=proxy:))maps:([A-Za-z0-9][A-Za-z0-9_.-]*)")


def _resolve(settings, key, value, known):
    if not isinstance(value, str) or "maps:" not in value:
        return value

    def reference(match):
        name = match.group(1)
        if name not in known:
            invalid(key, f"names maps:{name}, which postfix:maps does not define", value)
        return known[name]["reference"]

    return MAP_REFERENCE.sub(reference, value)


def with_everyday_features(settings, params):
    """
    ``params`` (main.cf records, ``postfix:main`` already merged in) with
    :py:func:`everyday_features` added where ``postfix:main`` does not set
    the parameter itself, and every ``maps:NAME`` in a value replaced by the
    map's ``TYPE:<config_dir>/maps/NAME`` (an unknown NAME is refused
    naming the parameter).

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.with_everyday_features "$(cat postfix-settings.json)" '{"transport_maps": "maps:transport"}'
    """
    raw = _mapping(settings, "main")
    merged = {**params, **{name: value for name, value in everyday_features(settings).items() if name not in raw}}
    merged = with_policy_services(settings, merged)
    known = static_maps(settings)
    return {name: _resolve(settings, f"main:{name}", value, known) for name, value in merged.items()}


def services_with_map_references(settings, services):
    """
    The ``postfix:master`` services over the policy services'
    (:py:func:`policy_services`), with ``maps:NAME`` in their ``-o``
    option values replaced as in :py:func:`with_everyday_features`.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.services_with_map_references "$(cat postfix-settings.json)" '{"submission/inet": {"command": "smtpd", "options": {"smtpd_sender_restrictions": "check_sender_access,maps:senders"}}}'
    """
    known = static_maps(settings)
    resolved = {}
    for name, record in {**policy_services(settings), **services}.items():
        options = record.get("options")
        if isinstance(options, dict):
            record = {
                **record,
                "options": {
                    option: _resolve(settings, f"master:{name}:options:{option}", value, known)
                    for option, value in options.items()
                },
            }
        resolved[name] = record
    return resolved


SPF_SERVICE = "policyd-spf/unix"
#: what comes before the policy services in smtpd_recipient_restrictions
POLICY_PRELUDE = ["permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"]


def _port(key, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        invalid(key, "must be a port number", value)
    return value


def spf_config_file(settings):
    """
    Where policyd-spf's configuration goes: ``policy:spf:config_file``, by
    default ``<config_dir>/policyd-spf.conf``.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.spf_config_file '{"config_dir": "/etc/postfix", "policy": {"spf": {"config_file": null}}}'
    """
    return _get(settings, "policy:spf:config_file") or f"{_get(settings, 'config_dir')}/policyd-spf.conf"


def _policy_checks(settings):
    checks = []
    if _enabled(settings, "policy:postgrey"):
        _positive_int("policy:postgrey:delay", _get(settings, "policy:postgrey:delay"))
        address = _text("policy:postgrey:listen:address", _get(settings, "policy:postgrey:listen:address"), False)
        port = _port("policy:postgrey:listen:port", _get(settings, "policy:postgrey:listen:port"))
        checks.append(f"check_policy_service inet:{address}:{port}")
    if _enabled(settings, "policy:spf"):
        checks.append(f"check_policy_service unix:private/{SPF_SERVICE.split('/')[0]}")
    return checks


def _srs(settings):
    if not _enabled(settings, "policy:srs"):
        return {}
    _text("policy:srs:domain", _get(settings, "policy:srs:domain"), allow_none=False)
    listen = _text("policy:srs:listen", _get(settings, "policy:srs:listen"), allow_none=False)
    forward = _port("policy:srs:forward_port", _get(settings, "policy:srs:forward_port"))
    reverse = _port("policy:srs:reverse_port", _get(settings, "policy:srs:reverse_port"))
    return {
        "sender_canonical_maps": f"tcp:{listen}:{forward}",
        "sender_canonical_classes": "envelope_sender",
        "recipient_canonical_maps": f"tcp:{listen}:{reverse}",
        "recipient_canonical_classes": "envelope_recipient, header_recipient",
    }


def with_policy_services(settings, params):
    """
    ``params`` with the enabled policy services (``policy:postgrey``,
    ``policy:spf``) in ``smtpd_recipient_restrictions`` after
    permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
    and before what the formula put there (the quota check, whose OK ends
    the list), and SRS's canonical maps (``policy:srs``). ``postfix:main``
    setting ``smtpd_recipient_restrictions`` itself wins.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.with_policy_services "$(cat postfix-settings.json)" '{}'
    """
    raw = _mapping(settings, "main")
    params = {**params, **{name: value for name, value in _srs(settings).items() if name not in raw}}
    checks = _policy_checks(settings)
    if checks and "smtpd_recipient_restrictions" not in raw:
        current = _items(params, "smtpd_recipient_restrictions")
        restrictions = [*POLICY_PRELUDE, *checks, *(item for item in current if item not in POLICY_PRELUDE)]
        params["smtpd_recipient_restrictions"] = ", ".join(restrictions)
    return params


def policy_services(settings):
    """
    The master.cf services of the policy services: policyd-spf (spawn) when
    ``policy:spf`` is enabled.

    CLI Example:

    .. code-block:: bash

        salt '*' postfix_records.policy_services "$(cat postfix-settings.json)"
    """
    if not _enabled(settings, "policy:spf"):
        return {}
    return {
        SPF_SERVICE: {
            "private": "-", "unpriv": "n", "chroot": "n", "wakeup": "-", "maxproc": "0",
            "command": f"spawn user=policyd-spf argv=/usr/bin/policyd-spf {spf_config_file(settings)}",
        }
    }
