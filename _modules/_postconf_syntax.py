"""
The syntax of main.cf parameters and master.cf services as postconf(1) takes
them (a plain Python module, not a Salt module): names, values, service
fields, ``-o`` options. The ``postconf`` execution module validates its input
with it before it writes; ``postfix_records`` validates the formula's
records with it while an sls renders, so bad pillar fails the run before any
state changes anything. Pure: no postconf run, no reads of the host.
"""

import re

from salt.exceptions import SaltInvocationError

PARAMETER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
SERVICE_NAME = re.compile(r"[^\s/={}#]+")
SERVICE_TYPES = ("inet", "unix", "unix-dgram", "fifo", "pass")
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
#: master.cf's single-column fields, in order, with the validation pattern of their value
SERVICE_FIELDS = {
    "private": re.compile(r"[yn-]"),
    "unpriv": re.compile(r"[yn-]"),
    "chroot": re.compile(r"[yn-]"),
    "wakeup": re.compile(r"-|[0-9]+\??"),
    "maxproc": re.compile(r"-|[0-9]+"),
}
SERVICE_SPEC_KEYS = (*SERVICE_FIELDS, "command", "options", "enabled")


def as_text(what, value, list_separator):
    """A pillar value as Postfix text: booleans become yes/no, lists are joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return list_separator.join(as_text(what, item, list_separator) for item in value)
    if isinstance(value, str):
        return value.strip()
    raise SaltInvocationError(f"{what}: value must be text, a number, a boolean or a list, not {type(value).__name__}")


def checked_name(name, what="parameter name"):
    """NAME, if it is a main.cf parameter name (WHAT names it in the error)."""
    if not isinstance(name, str) or not PARAMETER_NAME.fullmatch(name):
        raise SaltInvocationError(f"invalid Postfix {what}: {name!r}")
    return name


def checked_value(what, value, list_separator=", "):
    """VALUE as the text postconf writes (see as_text), if it holds no control character."""
    text = as_text(what, value, list_separator)
    if CONTROL_CHARACTER.search(text):
        raise SaltInvocationError(f"{what}: value contains a newline or control character: {text!r}")
    return text


def wanted_parameters(params):
    """Validate PARAMS: {name: text} with None kept for "remove"."""
    if not isinstance(params, dict):
        raise SaltInvocationError(f"params must be a dict of parameter names to values, not {type(params).__name__}")
    return {
        checked_name(name): None if value is None else checked_value(f"parameter {name}", value)
        for name, value in params.items()
    }


def tokenize(text):
    """Split master.cf text at whitespace, keeping ``{...}`` groups whole (as postconf does)."""
    found, current, depth = [], "", 0
    for char in text:
        if char.isspace() and depth == 0:
            if current:
                found.append(current)
            current = ""
            continue
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        current += char
    if current:
        found.append(current)
    return found


def unbraced(token):
    """A master.cf ``{ ... }`` group's content, or TOKEN as it is."""
    return token[1:-1].strip() if token.startswith("{") and token.endswith("}") else token


def split_daemon_arguments(arguments):
    """Daemon options come before the first non-option argument (as postconf reads them):
    -> ({-o name: value}, the other arguments in order)."""
    options, others = {}, []
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("-") or argument == "--":
            break
        glued = argument.startswith("-o") and argument != "-o"
        if glued or (argument == "-o" and index + 1 < len(arguments)):
            setting = argument[2:] if glued else arguments[index + 1]
            name, _, value = unbraced(setting).partition("=")
            options[name.strip()] = value.strip()
            index += 1 if glued else 2
            continue
        others.append(argument)
        index += 1
    return options, others + arguments[index:]


def checked_service_key(key):
    """KEY, if it is a master.cf service's ``name/type``."""
    if not isinstance(key, str) or key.count("/") != 1:
        raise SaltInvocationError(f"invalid master.cf service {key!r}: expected name/type, e.g. submission/inet")
    name, service_type = key.split("/")
    if not SERVICE_NAME.fullmatch(name):
        raise SaltInvocationError(f"invalid master.cf service name {name!r} in {key!r}")
    if service_type not in SERVICE_TYPES:
        raise SaltInvocationError(
            f"invalid master.cf service type {service_type!r} in {key!r}: one of {', '.join(SERVICE_TYPES)}"
        )
    return key


def checked_field(key, field, value):
    """A single-column FIELD of service KEY (private, unpriv, chroot, wakeup, maxproc) as text."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not SERVICE_FIELDS[field].fullmatch(text):
        raise SaltInvocationError(f"service {key}: invalid {field} field {value!r}")
    return text


def checked_command(key, command):
    """Service KEY's command (the program and its arguments, no -o options), tokens joined by one space."""
    if not isinstance(command, str) or not command.strip():
        raise SaltInvocationError(f"service {key}: a command is required")
    if CONTROL_CHARACTER.search(command):
        raise SaltInvocationError(f"service {key}: command contains a newline or control character: {command!r}")
    tokens = tokenize(command)
    options, _ = split_daemon_arguments(tokens[1:])
    if tokens[0].startswith("-") or options:
        raise SaltInvocationError(
            f"service {key}: command {command!r} must start with the program and hold no -o options"
        )
    return " ".join(tokens)


def checked_options(key, options):
    """Service KEY's ``{-o name: value}`` as text postconf -P takes (no whitespace in a value)."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise SaltInvocationError(f"service {key}: options must be a dict of -o parameter names to values")
    checked = {}
    for name, value in options.items():
        checked_name(name, f"-o parameter name in service {key}")
        text = checked_value(f"service {key} -o {name}", value, list_separator=",")
        if re.search(r"\s", text):
            raise SaltInvocationError(
                f"service {key} -o {name}: value contains whitespace (postconf -P refuses it): {text!r}"
            )
        checked[name] = text
    return checked


def wanted_service(key, spec):
    """Validate one service spec; None means "absent"."""
    checked_service_key(key)
    if not isinstance(spec, dict):
        raise SaltInvocationError(f"service {key}: expected a dict of fields, command and options")
    unknown = set(spec) - set(SERVICE_SPEC_KEYS)
    if unknown:
        raise SaltInvocationError(f"service {key}: unknown field(s) {', '.join(sorted(unknown))}")
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SaltInvocationError(f"service {key}: enabled must be true or false, not {enabled!r}")
    if not enabled:
        return None
    entry = {field: checked_field(key, field, spec.get(field, "-")) for field in SERVICE_FIELDS}
    entry["command"] = checked_command(key, spec.get("command"))
    entry["options"] = checked_options(key, spec.get("options"))
    return entry
