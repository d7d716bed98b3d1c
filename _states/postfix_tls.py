"""
Postfix's server certificate and key, checked before Postfix is pointed at
them: a key that does not belong to the certificate, a certificate that has
expired (or is not valid yet) or a file that is not PEM fails the state
naming the file, and nothing is written.

.. code-block:: yaml

    /etc/postfix/tls/server.crt:
      postfix_tls.certificate:
        - key: /etc/postfix/tls/server.key
        - cert_pem: |
            -----BEGIN CERTIFICATE-----
            ...
        - key_pem: |
            -----BEGIN PRIVATE KEY-----
            ...

Without ``cert_pem``/``key_pem`` the files already at ``name`` and ``key``
are checked. With them, the PEM text is checked first and then written:
the certificate 0644 root, the key 0600 root. The key never appears in the
state's output (changes show the certificate's fingerprint and ``key:
changed``).
"""

import datetime
import os

import salt.utils.files

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

__virtualname__ = "postfix_tls"


def __virtual__():
    if not HAS_CRYPTOGRAPHY:
        return (False, "postfix_tls needs the cryptography Python package")
    return __virtualname__


class _Refused(Exception):
    pass


def _read(path):
    try:
        with salt.utils.files.fopen(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Refused(f"cannot read {path}: {exc.strerror}") from exc


def _load_cert(data, path):
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise _Refused(f"{path} holds no PEM certificate: {exc}") from exc


def _load_key(data, path):
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise _Refused(f"{path} holds no unencrypted PEM private key") from exc


def _public_bytes(public_key):
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check(cert_data, key_data, cert_path, key_path):
    """The certificate's fingerprint, if the pair is usable now; else _Refused naming the file."""
    cert = _load_cert(cert_data, cert_path)
    key = _load_key(key_data, key_path)
    if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        raise _Refused(f"the key in {key_path} does not match the certificate in {cert_path}")
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        raise _Refused(f"the certificate in {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise _Refused(f"the certificate in {cert_path} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return cert.fingerprint(hashes.SHA256()).hex(":")


def _fingerprint(data, path):
    if data is None:
        return None
    try:
        return _load_cert(data, path).fingerprint(hashes.SHA256()).hex(":")
    except _Refused:
        return "(not a certificate)"


def _write(path, data, mode):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    temporary = f"{path}.salt-new"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _file_ok(path, data, mode):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    return _read(path) == data and (info.st_mode & 0o7777) == mode and info.st_uid == 0


def certificate(name, key, cert_pem=None, key_pem=None):
    """
    The certificate at ``name`` and its private key at ``key`` are a usable
    pair: the key matches the certificate, which is valid now. With
    ``cert_pem`` and ``key_pem`` (PEM text) the pair is checked and then
    written there (certificate 0644, key 0600, owner root). Refusals name
    the file; nothing is written then. With test=True nothing is written
    and the changes are predicted.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if (cert_pem is None) != (key_pem is None):
        ret.update(result=False, comment="cert_pem and key_pem go together")
        return ret
    try:
        if cert_pem is None:
            cert_data, key_data = _read(name), _read(key)
            for path, data in ((name, cert_data), (key, key_data)):
                if data is None:
                    if __opts__["test"]:
                        # an earlier state (e.g. the self-signed pair) writes it in a real run
                        ret.update(result=None, comment=f"{path} does not exist yet: it would be checked once written")
                        return ret
                    raise _Refused(f"{path} does not exist")
            fingerprint = _check(cert_data, key_data, name, key)
            ret["comment"] = f"{name} and {key} are a valid pair (SHA256 {fingerprint})"
            return ret
        cert_data, key_data = cert_pem.encode(), key_pem.encode()
        fingerprint = _check(cert_data, key_data, f"{name} (tls:cert_pem)", f"{key} (tls:key_pem)")
        changes = {}
        if not _file_ok(name, cert_data, 0o644):
            changes["certificate"] = {"old": _fingerprint(_read(name), name), "new": fingerprint}
        if not _file_ok(key, key_data, 0o600):
            changes["key"] = {"old": "present" if os.path.exists(key) else None, "new": "changed"}
    except _Refused as exc:
        ret.update(result=False, comment=f"refused: {exc}")
        return ret
    if not changes:
        ret["comment"] = f"{name} and {key} are in place (SHA256 {fingerprint})"
        return ret
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"{', '.join(sorted(changes))} would be written")
        return ret
    # the key first: a certificate is never in place before its key
    _write(key, key_data, 0o600)
    _write(name, cert_data, 0o644)
    if not (_file_ok(name, cert_data, 0o644) and _file_ok(key, key_data, 0o600)):
        ret.update(result=False, comment=f"{name} or {key} does not hold what was written")
        return ret
    ret.update(changes=changes, comment=f"{', '.join(sorted(changes))} written")
    return ret
