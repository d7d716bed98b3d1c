"""postfix_map.managed on its own: a map made secret never has its new entries in a readable index."""

import os
import shutil
import stat


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_map_made_secret_is_rebuilt_into_an_index_already_closed(states, postfix_sandbox, tmp_path, monkeypatch):
    """postmap rebuilds a hash index in place and keeps its mode: the state closes it first."""
    config_dir = str(postfix_sandbox.config_dir)
    name = str(tmp_path / "maps" / "credentials")
    index = f"{name}.db"
    ret = states.postfix_map.managed(name=name, entries=[["[smtp.example.net]:587", "public"]], type="hash",
                                     config_dir=config_dir)
    assert ret.result is True, ret.comment
    assert mode(name) == mode(index) == 0o644

    seen = tmp_path / "index-mode-seen-by-postmap"
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (wrapper / "postmap").write_text(
        f'#!/bin/sh\ncase "$*" in *" -q "*) ;; *) stat -c %a {index} >> {seen} ;; esac\n'
        f'exec {shutil.which("postmap")} "$@"\n')
    (wrapper / "postmap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper}:{os.environ['PATH']}")

    ret = states.postfix_map.managed(name=name, entries=[["[smtp.example.net]:587", "user:S3cret-map"]],
                                     type="hash", secret=True, config_dir=config_dir)
    assert ret.result is True, ret.comment
    assert "S3cret-map" not in str(ret.changes) + ret.comment
    assert seen.read_text().split() == ["600"], "postmap wrote the secret into an index others could read"
    assert mode(name) == mode(index) == 0o600
