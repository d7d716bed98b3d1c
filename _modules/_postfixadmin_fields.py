"""
The checks of postfixadmin's domain, mailbox and alias fields the
``postfixadmin*`` execution modules share (a plain Python module, not a Salt
module, and without psycopg): ``postfix_checks`` runs them on pillar while
an sls renders, before any state changes anything.
"""

import re

from salt.exceptions import SaltInvocationError

MAX_QUOTA = 9223372036854774784
INT_MAX = 2147483647
BIGINT_MAX = 9223372036854775807

_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_ATEXT = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART_RE = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _text(field, value, max_length=255):
    if not isinstance(value, str) or len(value) > max_length or _CONTROL_RE.search(value):
        raise SaltInvocationError(
            f"{field} must be text of at most {max_length} characters without control characters: {value!r}"
        )
    return value


def _optional_text(field, value):
    return None if value is None else _text(field, value)


def _flag(field, value):
    if not isinstance(value, bool):
        raise SaltInvocationError(f"{field} must be true or false: {value!r}")
    return value


def _integer(field, value, low, high):
    if type(value) is not int or not low <= value <= high:
        raise SaltInvocationError(f"{field} must be an integer from {low} to {high}: {value!r}")
    return value


def _domain_name(value):
    if not isinstance(value, str) or len(value) > 253 or not _DOMAIN_RE.fullmatch(value.lower()):
        raise SaltInvocationError(f"invalid domain name: {value!r}")
    return value.lower()


def _address(value, catch_all=False):
    """user@domain (or @domain with catch_all), lower-cased; returns (address, local_part, domain)."""
    if not isinstance(value, str) or len(value) > 254 or value.count("@") != 1:
        raise SaltInvocationError(f"invalid address: {value!r}")
    local_part, domain = value.lower().split("@")
    valid_local = (catch_all and local_part == "") or (len(local_part) <= 64 and _LOCAL_PART_RE.fullmatch(local_part))
    if not valid_local:
        raise SaltInvocationError(f"invalid address: {value!r}")
    domain = _domain_name(domain)
    return f"{local_part}@{domain}", local_part, domain


def _goto(value):
    """A list of addresses (or one comma-separated string) -> list, lower-cased, without repeats."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise SaltInvocationError(f"goto must be a non-empty list of addresses: {value!r}")
    addresses = [_address(item.strip() if isinstance(item, str) else item)[0] for item in items]
    return list(dict.fromkeys(addresses))


def _password(value):
    if not isinstance(value, str) or not value or _CONTROL_RE.search(value):
        raise SaltInvocationError("password must be non-empty text without control characters")
    return value


_DOMAIN_FIELDS = {
    "description": _text,
    "aliases": lambda field, value: _integer(field, value, -1, INT_MAX),
    "mailboxes": lambda field, value: _integer(field, value, -1, INT_MAX),
    "maxquota": lambda field, value: _integer(field, value, -1, BIGINT_MAX),
    "quota": lambda field, value: _integer(field, value, -1, BIGINT_MAX),
    "transport": _optional_text,
    "backupmx": _flag,
    "active": _flag,
    "password_expiry": lambda field, value: _integer(field, value, 0, INT_MAX),
}
_MAILBOX_FIELDS = {
    "full_name": _text,
    "quota": lambda field, value: _integer(field, value, 0, MAX_QUOTA),
    "active": _flag,
}
_ALIAS_FIELDS = {
    "goto": lambda field, value: _goto(value),
    "active": _flag,
}
_FIELDS = {"domain": _DOMAIN_FIELDS, "mailbox": _MAILBOX_FIELDS, "alias": _ALIAS_FIELDS}


def _checked(kind, fields):
    checkers = _FIELDS[kind]
    unknown = sorted(set(fields) - set(checkers))
    if unknown:
        raise SaltInvocationError(f"unknown {kind} field(s) {', '.join(unknown)}; known: {', '.join(checkers)}")
    return {field: checkers[field](field, value) for field, value in fields.items()}
