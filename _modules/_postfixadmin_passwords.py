"""
Mailbox password hashing for the ``postfixadmin*`` execution modules (a plain
Python module, not a Salt module).

Passwords are hashed in process with libcrypt (libxcrypt), in the format
postfixadmin's ``$CONF['encrypt']`` setting writes, so postfixadmin's login
check and Dovecot both verify them and no doveadm is needed (on a fresh
minion Dovecot is not installed yet when mailboxes are made).
"""

import base64
import ctypes
import ctypes.util
import hmac
import importlib
import re
import secrets

import salt.loader.context
from salt.exceptions import CommandExecutionError, SaltInvocationError

# __salt__ of the postfixadmin.* call running (what salt.loader.dunder does for
# __opts__); None when imported without Salt's loader.
__salt__ = salt.loader.context.LoaderContext().named_context("__salt__")

# Shared with the other postfixadmin* modules. Not Salt modules themselves (the loader
# skips names starting with "_"), so reloaded here: code saltutil.sync_modules brings
# then replaces what a running minion imported before.
importlib.reload(importlib.import_module("_postfixadmin_fields"))
from _postfixadmin_fields import (  # noqa: E402
    _password,
)


#: Default hash format: what postfixadmin writes with encrypt =
#: 'dovecot:SHA512-CRYPT' (and 'php_crypt:SHA512::{SHA512-CRYPT}').
DEFAULT_ENCRYPT = "dovecot:SHA512-CRYPT"
#: crypt(3) method -> libxcrypt prefix
_CRYPT_PREFIXES = {"SHA512": "$6$", "SHA256": "$5$", "MD5": "$1$", "BLOWFISH": "$2y$"}
#: Dovecot crypt schemes (postfixadmin's dovecot:SCHEME) -> crypt(3) method
_DOVECOT_CRYPT_METHODS = {"SHA512-CRYPT": "SHA512", "SHA256-CRYPT": "SHA256", "BLF-CRYPT": "BLOWFISH",
                          "MD5-CRYPT": "MD5"}
#: Dovecot schemes whose value is a crypt(3) string: verified in process
_CRYPT_SCHEMES = ("SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT", "MD5", "CRYPT", "DES-CRYPT")
_SCHEME_RE = re.compile(r"\{([A-Z0-9.-]+)\}(\S+)")
_B64 = "[./0-9A-Za-z]"
#: crypt(3) strings postfixadmin writes without a {SCHEME} prefix (md5crypt,
#: php_crypt, system with a modern salt): md5crypt, sha256/sha512-crypt, bcrypt
_BARE_CRYPT_RE = re.compile(
    rf"\$1\${_B64}{{1,8}}\${_B64}{{22}}"
    rf"|\$5\$(?:rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{43}}"
    rf"|\$6\$(?:rounds=\d+\$)?{_B64}{{1,16}}\${_B64}{{86}}"
    rf"|\$2[abxy]\$\d\d\${_B64}{{53}}"
)
#: sizeof(struct crypt_data) in libxcrypt
_CRYPT_DATA_SIZE = 32768
_CRYPT_OUTPUT_SIZE = 192


def _libcrypt():
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    libcrypt.crypt_rn.restype = ctypes.c_char_p
    libcrypt.crypt_rn.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
    libcrypt.crypt_gensalt_rn.restype = ctypes.c_char_p
    libcrypt.crypt_gensalt_rn.argtypes = (
        ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
    )
    return libcrypt


def _crypt(password, setting):
    """crypt(3) (libxcrypt's reentrant crypt_rn), in process; None if it refuses SETTING."""
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = _libcrypt().crypt_rn(password.encode(), setting.encode(), data, _CRYPT_DATA_SIZE)
    return result.decode() if result and not result.startswith(b"*") else None


def _gensalt(method, rounds):
    """A crypt(3) setting for METHOD with a random salt (16 bytes from secrets)."""
    output = ctypes.create_string_buffer(_CRYPT_OUTPUT_SIZE)
    random = secrets.token_bytes(16)
    setting = _libcrypt().crypt_gensalt_rn(
        _CRYPT_PREFIXES[method].encode(), rounds or 0, random, len(random), output, _CRYPT_OUTPUT_SIZE
    )
    if not setting:
        raise SaltInvocationError(f"libcrypt refuses {method} with difficulty {rounds}")
    return setting.decode()


def _encrypt_format(encrypt):
    """postfixadmin's encrypt setting (None: postfixadmin:encrypt from the minion config or
    pillar, else DEFAULT_ENCRYPT) -> (crypt method, rounds or None, {SCHEME} prefix or '')."""
    if encrypt is None:
        # Imported without Salt's loader (tests seeding data) there is no __salt__.
        configured = __salt__["config.get"]("postfixadmin:encrypt") if __salt__.loader() is not None else None
        encrypt = configured or DEFAULT_ENCRYPT
    problem = SaltInvocationError(
        f"unsupported encrypt {encrypt!r}: use one of postfixadmin's crypt settings: "
        "dovecot:SHA512-CRYPT (default), dovecot:SHA256-CRYPT, dovecot:BLF-CRYPT, dovecot:MD5-CRYPT, "
        "php_crypt[:SHA512|SHA256|MD5|BLOWFISH[:DIFFICULTY[:{PREFIX}]]], md5crypt"
    )
    if not isinstance(encrypt, str):
        raise problem
    if encrypt == "md5crypt":
        return "MD5", None, ""
    kind, _, rest = encrypt.partition(":")
    if kind == "dovecot" and rest in _DOVECOT_CRYPT_METHODS:
        return _DOVECOT_CRYPT_METHODS[rest], None, f"{{{rest}}}"
    if kind != "php_crypt":
        raise problem
    method, difficulty, prefix = (rest.split(":") + ["", "", ""])[:3] if rest else ("", "", "")
    method = method or "SHA512"
    if method not in _CRYPT_PREFIXES or (difficulty and not difficulty.isdigit()) or rest.count(":") > 2:
        raise problem
    if prefix and not re.fullmatch(r"\{[A-Z0-9.-]+\}", prefix):
        raise problem
    return method, int(difficulty) if difficulty else None, prefix


def _is_hashed(password):
    return bool(_SCHEME_RE.fullmatch(password) or _BARE_CRYPT_RE.fullmatch(password))


def _hash_password(password, encrypt=None):
    """A hash postfixadmin could have written ({SCHEME}... or a bare crypt string) as is;
    plaintext hashed in the ``encrypt`` format with a random salt."""
    password = _password(password)
    method, rounds, prefix = _encrypt_format(encrypt)
    if _is_hashed(password):
        return password
    hashed = _crypt(password, _gensalt(method, rounds))
    if hashed is None:
        raise CommandExecutionError(f"libcrypt could not hash the password with {method}")
    return prefix + hashed


def _doveadm_verifies(password, stored):
    """Schemes other than crypt's (e.g. postfixadmin's dovecot:ARGON2I) need
    ``doveadm pw -t``, which takes the stored hash on its command line."""
    result = __salt__["cmd.run_all"](
        ["doveadm", "pw", "-t", stored],
        python_shell=False,
        stdin=f"{password}\n",
        stdin_raw_newlines=True,
        output_loglevel="quiet",
        ignore_retcode=True,
    )
    return result["retcode"] == 0


def _password_matches(password, stored):
    """A hash must equal the stored one; plaintext is verified against it: crypt-family
    hashes ({SCHEME}-prefixed, {SHA512-CRYPT.B64} or bare) in process."""
    if _is_hashed(password):
        return hmac.compare_digest(password, stored)
    match = _SCHEME_RE.fullmatch(stored)
    if match is None:
        value = stored
    elif match.group(1) in _CRYPT_SCHEMES:
        value = match.group(2)
    elif match.group(1) == "SHA512-CRYPT.B64":
        try:
            value = base64.b64decode(match.group(2), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
    else:
        return _doveadm_verifies(password, stored)
    return hmac.compare_digest(_crypt(password, value) or "", value)
