"""
How the formula's modules name a bad pillar value (a plain Python module,
not a Salt module; ``postfix_checks`` and ``postfix_records`` share it): the
key always, the value only where it cannot be or give away a secret.
"""

from salt.exceptions import SaltInvocationError

#: settings whose every value may be a secret or give one away (a database
#: connection given as one conninfo text holds its password; a relayhost
#: username may be a pasted "user:password")
SECRET_SETTINGS = (("database",), ("relay", "sync_from"), ("database_server", "superuser"),
                   ("postfixadmin", "lookup_user"), ("relayhost",))
#: keys whose value is a secret, or by mistake may be a private key
SECRET_KEYS = ("password", "key", "key_pem")


def secret(path, value=None):
    """Whether the value at PATH (a tuple of keys under ``postfix``) must not be shown."""
    return (any(part in SECRET_KEYS for part in path)
            or any(path[:len(prefix)] == prefix for prefix in SECRET_SETTINGS)
            or (isinstance(value, str) and "PRIVATE KEY" in value))


def invalid(key, problem, value):
    """Raise SaltInvocationError naming pillar ``postfix:KEY`` (``a:b:c``), its PROBLEM
    and, unless it may be a secret, its VALUE."""
    shown = "(value not shown)" if secret(tuple(str(key).split(":")), value) else repr(value)
    raise SaltInvocationError(f"pillar postfix:{key}: {problem}, got {shown}")


def checked_as(key, check, *args):
    """CHECK(*ARGS) - a module's own check of its input, run on pillar while an sls
    renders - with its refusal named as pillar ``postfix:KEY``'s."""
    try:
        return check(*args)
    except SaltInvocationError as error:
        raise SaltInvocationError(f"pillar postfix:{key}: {error}") from None
