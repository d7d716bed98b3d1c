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

For labs, ``postfix_tls.self_signed`` keeps a self-signed pair for one
name there: made when missing, remade when the certificate no longer
matches its key or name or expires within ``days_remaining`` days.

.. code-block:: yaml

    /etc/postfix/tls/server.crt:
      postfix_tls.self_signed:
        - key: /etc/postfix/tls/server.key
        - common_name: mx1.example.com
"""

import datetime
import os

import salt.utils.files

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

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


def _unusable(cert, key, cert_path, key_path):
    """Why CERT and KEY are no usable pair now, naming the file; None if they are."""
    if _public_bytes(key.public_key()) != _public_bytes(cert.public_key()):
        return f"the key in {key_path} does not match the certificate in {cert_path}"
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        return f"the certificate in {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now:
        return f"the certificate in {cert_path} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return None


def _check(cert_data, key_data, cert_path, key_path):
    """The certificate's fingerprint, if the pair is usable now; else _Refused naming the file."""
    cert = _load_cert(cert_data, cert_path)
    problem = _unusable(cert, _load_key(key_data, key_path), cert_path, key_path)
    if problem:
        raise _Refused(problem)
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


def _write_pair(cert_path, cert_data, key_path, key_data):
    """Write the key, then the certificate (a certificate is never in place before
    its key); True if both files hold what was written, owned by root."""
    _write(key_path, key_data, 0o600)
    _write(cert_path, cert_data, 0o644)
    return _file_ok(cert_path, cert_data, 0o644) and _file_ok(key_path, key_data, 0o600)


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
        if "PRIVATE KEY" in cert_pem:
            raise _Refused(f"cert_pem for {name} holds a private key, and the certificate file is world-readable: "
                           "give the key as key_pem only")
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
    if not _write_pair(name, cert_data, key, key_data):
        ret.update(result=False, comment=f"{name} or {key} does not hold what was written")
        return ret
    ret.update(changes=changes, comment=f"{', '.join(sorted(changes))} written")
    return ret


def _self_signed_pem(key, common_name, days_valid):
    """A certificate for COMMON_NAME signed by KEY, valid from now for DAYS_VALID days, as PEM."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days_valid))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _names(cert):
    common_names = [attribute.value for attribute in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        alt_names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return common_names, []
    return common_names, alt_names.get_values_for_type(x509.DNSName)


def _self_signed_problem(cert_data, key, common_name, days_remaining, cert_path, key_path):
    """Why the certificate in CERT_DATA is not the one to keep for KEY and COMMON_NAME, or None."""
    if cert_data is None:
        return f"{cert_path} is missing"
    try:
        cert = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        return f"{cert_path} holds no PEM certificate"
    problem = _unusable(cert, key, cert_path, key_path)
    if problem:
        return problem
    if _names(cert) != ([common_name], [common_name]):
        return f"the certificate in {cert_path} is not for {common_name}"
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days_remaining)
    if cert.not_valid_after_utc < soon:
        return f"the certificate in {cert_path} expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None


def self_signed(name, key, common_name, days_valid=365, days_remaining=30):
    """
    A self-signed certificate for ``common_name`` (its subject CN and only
    DNS name) at ``name`` and its RSA 2048 private key at ``key``, for labs.
    A missing key, or one that is no RSA key, is made anew; the certificate
    is remade when it is missing, not for the key or the name, or expires
    within ``days_remaining`` days (new ones are valid ``days_valid``
    days). The key is written 0600 and the certificate 0644, both owned by
    root, key first. Changes name the certificate's fingerprints, never the
    key.

    CLI Example:

    .. code-block:: bash

        salt '*' state.single postfix_tls.self_signed /etc/postfix/tls/server.crt key=/etc/postfix/tls/server.key common_name=mx1.example.com
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if not isinstance(common_name, str) or not common_name or len(common_name) > 64:
        ret.update(result=False, comment=f"common_name {common_name!r} is not a name of 1 to 64 characters")
        return ret
    for label, days in (("days_valid", days_valid), ("days_remaining", days_remaining)):
        if isinstance(days, bool) or not isinstance(days, int) or days < 0:
            ret.update(result=False, comment=f"{label} {days!r} is not a number of days")
            return ret
    if days_valid <= days_remaining:
        ret.update(result=False, comment=f"days_valid ({days_valid}) must be more than days_remaining ({days_remaining})")
        return ret
    try:
        key_data, cert_data = _read(key), _read(name)
    except _Refused as exc:
        ret.update(result=False, comment=f"refused: {exc}")
        return ret
    try:
        # the state's own key: RSA's consistency check (~50 ms a run) is skipped;
        # comparing it with the certificate's public key proves it is the pair's
        private_key = serialization.load_pem_private_key(
            key_data, password=None, unsafe_skip_rsa_key_validation=True) if key_data else None
    except (ValueError, TypeError):
        private_key = None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        private_key = None
    changes = {}
    if private_key is None:
        changes["key"] = {"old": "present" if key_data else None, "new": "created"}
        problem = f"the key in {key} is new"
    else:
        problem = _self_signed_problem(cert_data, private_key, common_name, days_remaining, name, key)
    if problem:
        changes["certificate"] = {"old": _fingerprint(cert_data, name), "new": f"self-signed for {common_name}"}
    elif not (_file_ok(name, cert_data, 0o644) and _file_ok(key, key_data, 0o600)):
        changes["mode"] = {"old": "other than root 0644/0600", "new": "root, certificate 0644, key 0600"}
    if not changes:
        ret["comment"] = f"the self-signed certificate {name} for {common_name} is in place"
        return ret
    why = f" ({problem})" if problem else ""
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"{', '.join(sorted(changes))} would be written{why}")
        return ret
    if private_key is None:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_data = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    if problem:
        cert_data = _self_signed_pem(private_key, common_name, days_valid)
        changes["certificate"]["new"] = _fingerprint(cert_data, name)
    if not _write_pair(name, cert_data, key, key_data):
        ret.update(result=False, comment=f"{name} or {key} does not hold what was written")
        return ret
    ret.update(changes=changes, comment=f"{', '.join(sorted(changes))} written{why}")
    return ret
