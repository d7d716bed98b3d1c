"""
Static Postfix lookup tables (maps and aliases) written from pillar.

.. code-block:: yaml

    /etc/postfix/maps/transport:
      postfix_map.managed:
        - entries: [[partner.example, "smtp:[mx.partner.example]"]]

    /etc/postfix/maps/relayhost_sasl_passwd:
      postfix_map.managed:
        - entries: [["[smtp.example.net]:587", "user:secret"]]
        - secret: true

The source file is written when its entries (or mode) differ, and an
indexed type (lmdb, hash, cdb, btree; no ``type``: Postfix's
``default_database_type``, read when the state runs) is rebuilt with
postmap (postalias for ``format: aliases``) only then, or when its index is
missing or older than the source. A secret map (and its index) is 0600 root
and its values show as ``********`` in changes and comments.
"""

import os

import salt.utils.files
from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "postfix_map"

MASK = "********"
HEADER = "# Managed by Salt (postfix_map). Do not edit.\n"
INDEX_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
TYPES = (*INDEX_SUFFIX, "pcre", "regexp", "cidr", "texthash")
FORMATS = ("map", "aliases")


def __virtual__():
    # Always loadable: on a bare minion Postfix arrives later in the same run;
    # managed() says so when it is called before.
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _render(entries, format_):
    separator = ": " if format_ == "aliases" else " "
    return HEADER + "".join(f"{key}{separator}{value}\n" for key, value in entries)


def _parse(text, format_):
    """{key: value} of a file this state wrote (None if there is none)."""
    if text is None:
        return None
    separator = ":" if format_ == "aliases" else None
    entries = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if separator:
            key, _, value = line.partition(separator)
        else:
            key, _, value = line.partition(" ")
        entries[key.strip()] = value.strip()
    return entries


def _read(path):
    try:
        with salt.utils.files.fopen(path, "r") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _file_mode_owner(path):
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_mode & 0o7777, info.st_uid, info.st_gid, info.st_mtime


def _write(path, text, mode):
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    temporary = f"{path}.salt-new"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchown(fd, 0, 0)
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _entry_changes(old, new, secret):
    def shown(value):
        return MASK if secret and value is not None else value

    changes = {}
    for key in sorted(set(old or {}) | set(new)):
        before, after = (old or {}).get(key), new.get(key)
        if before != after:
            changes[key] = {"old": shown(before), "new": shown(after)}
    return changes


def _run(argv, secrets):
    result = __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True, output_loglevel="quiet")
    if result["retcode"] != 0:
        message = (result["stderr"] or result["stdout"]).strip()
        for secret in secrets:
            message = message.replace(secret, MASK)
        raise CommandExecutionError(f"{' '.join(argv[:1] + argv[-1:])} failed: {message}")
    return result["stdout"]


def managed(name, entries, type=None, mode="0644", secret=False, format="map", config_dir=None):  # pylint: disable=redefined-builtin
    """
    The map at ``name`` holds exactly ``entries`` (a list of ``[key,
    value]`` pairs, in order: pcre/regexp maps are matched top down).

    type
        lmdb, hash, cdb, btree, pcre, regexp, cidr or texthash; None: the
        Postfix's ``default_database_type``.
    mode
        The source file's mode (and its index's); ``secret`` forces 0600.
    secret
        True: values never appear in changes or comments.
    format
        ``map`` (``KEY VALUE`` lines, postmap) or ``aliases`` (``NAME:
        TARGETS`` lines, postalias, as newaliases does).
    config_dir
        Postfix's configuration directory (None: Postfix's default).
    """
    ret = _ret(name)
    if "postconf.get" not in __salt__:
        if __opts__["test"]:
            ret.update(result=None, comment=f"{name} would be written once Postfix is installed",
                       changes={name: {"old": None, "new": "written"}})
        else:
            ret.update(result=False, comment="postfix_map needs the postconf execution module (is Postfix installed?)")
        return ret
    secrets = [str(value) for _, value in entries] if secret else []
    try:
        if format not in FORMATS:
            raise SaltInvocationError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        if type is None:
            type = __salt__["postconf.get"]("default_database_type", config_dir)  # pylint: disable=redefined-builtin
        if type not in TYPES:
            raise SaltInvocationError(f"type must be one of {', '.join(TYPES)}, got {type!r}")
        if format == "aliases" and type not in INDEX_SUFFIX:
            raise SaltInvocationError(f"aliases need an indexed type, got {type!r}")
        wanted_mode = 0o600 if secret else int(str(mode), 8)
        text = _render(entries, format)
        current_text = _read(name)
        current = _file_mode_owner(name)
        changes = _entry_changes(_parse(current_text, format), dict(entries), secret)
        rewrite = current_text != text or current is None or current[:3] != (wanted_mode, 0, 0)
        if rewrite and not changes:
            changes["file"] = {"old": "differs" if current else None, "new": f"mode {wanted_mode:04o} root"}
        index = f"{name}{INDEX_SUFFIX[type]}" if type in INDEX_SUFFIX else None
        index_state = _file_mode_owner(index) if index else None
        reindex = index is not None and (
            rewrite or index_state is None or index_state[3] < current[3] or index_state[0] != wanted_mode
        )
        if reindex and not changes:
            changes["index"] = {"old": None if index_state is None else "stale", "new": index}
        if not changes:
            ret["comment"] = f"{name} ({type}) is in the desired state"
            return ret
        if __opts__["test"]:
            ret.update(result=None, changes=changes, comment=f"{name} ({type}) would be written"
                       + (" and rebuilt" if reindex else ""))
            return ret
        if rewrite:
            _write(name, text, wanted_mode)
        if reindex:
            if index_state is not None and index_state[:3] != (wanted_mode, 0, 0):
                # postmap rebuilds an index in place, keeping its mode: made secret, the
                # map's new entries must not land in a readable index, not even until chmod
                os.chown(index, 0, 0)
                os.chmod(index, wanted_mode)
            tool = "postalias" if format == "aliases" else "postmap"
            argv = [tool] + (["-c", config_dir] if config_dir else []) + [f"{type}:{name}"]
            _run(argv, secrets)
            os.chown(index, 0, 0)
            os.chmod(index, wanted_mode)
            if entries:
                key, value = entries[0]
                query = [tool] + (["-c", config_dir] if config_dir else []) + ["-q", key, f"{type}:{name}"]
                found = _run(query, secrets).strip()
                if found != str(value).strip():
                    raise CommandExecutionError(f"{name}: {tool} -q {key} does not give what was written")
        ret.update(changes=changes, comment=f"{name} ({type}) written" + (" and rebuilt" if reindex else ""))
        return ret
    except (CommandExecutionError, SaltInvocationError) as exc:
        message = str(exc)
        for value in secrets:
            message = message.replace(value, MASK)
        ret.update(result=False, changes={}, comment=message)
        return ret


def pruned(name, keep):
    """
    Removes the maps in the directory ``name`` that are not in ``keep``
    (map names), with their index files: maps dropped from pillar go away.
    """
    ret = _ret(name)
    try:
        present = sorted(os.listdir(name))
    except FileNotFoundError:
        ret["comment"] = f"{name} does not exist"
        return ret
    kept = set(keep)

    def map_of(entry):
        for suffix in (*set(INDEX_SUFFIX.values()), ".salt-new"):
            if entry.endswith(suffix):
                return entry[: -len(suffix)]
        return entry

    doomed = [entry for entry in present if map_of(entry) not in kept]
    if not doomed:
        ret["comment"] = f"{name} holds only the maps in pillar"
        return ret
    changes = {"removed": {"old": doomed, "new": None}}
    if __opts__["test"]:
        ret.update(result=None, changes=changes, comment=f"{len(doomed)} files would be removed")
        return ret
    for entry in doomed:
        os.remove(os.path.join(name, entry))
    ret.update(changes=changes, comment=f"{len(doomed)} files removed")
    return ret
