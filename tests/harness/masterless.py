"""Run the formula with ``salt-call --local``: this repository as file root,
pillar files layered in order (later files win, merged recursively)."""

import json
import os
import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
SALT_CALL = pathlib.Path(sys.executable).with_name("salt-call")


class Masterless:
    """A masterless minion whose config, cache and pillar live under BASE."""

    def __init__(self, base, minion_id="mx1", wrapper=()):
        self.base = pathlib.Path(base)
        self.minion_id = minion_id
        #: argv salt-call runs under (e.g. a mount namespace hiding Postfix)
        self.wrapper = list(wrapper)
        self.config_dir = self.base / "config"
        self.pillar_dir = self.base / "pillar"

    def write_file_root(self):
        """A file root serving only postfix/: with the whole checkout as file root,
        every salt-call would walk .venv's thousands of files. The custom modules
        come from module_dirs."""
        root = self.base / "file-root"
        root.mkdir(parents=True, exist_ok=True)
        link = root / "postfix"
        if not link.is_symlink():
            link.symlink_to(REPO / "postfix")
        return root

    def write_config(self):
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.pillar_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # pillar holds passwords
        config = {
            "id": self.minion_id,
            "file_client": "local",
            "file_roots": {"base": [str(self.write_file_root())]},
            "pillar_roots": {"base": [str(self.pillar_dir)]},
            "module_dirs": [str(REPO)],
            "root_dir": str(self.base),
            "cachedir": str(self.base / "cache"),
            "pki_dir": str(self.base / "pki"),
            "sock_dir": str(self.base / "sock"),
            "log_file": str(self.base / "minion.log"),
            "log_level_logfile": "info",
            "state_verbose": True,
            "pillar_source_merging_strategy": "recurse",
        }
        (self.config_dir / "minion").write_text(yaml.safe_dump(config))
        return self

    def set_pillar(self, *layers):
        """Each layer is a dict or a path to a YAML file; later layers win."""
        names = []
        for index, layer in enumerate(layers):
            name = f"layer{index}"
            text = pathlib.Path(layer).read_text() if isinstance(layer, (str, os.PathLike)) else yaml.safe_dump(layer)
            (self.pillar_dir / f"{name}.sls").write_text(text)
            names.append(name)
        (self.pillar_dir / "top.sls").write_text(yaml.safe_dump({"base": {"*": names}}))
        return self

    def salt_call(self, *args, check=False, timeout=300):
        """Run salt-call --local with JSON output; return (returncode, parsed output, stderr).

        A run still going after TIMEOUT seconds fails with the minion log's last
        lines, which name the state it hung in."""
        argv = [*self.wrapper, str(SALT_CALL), "--local", f"--config-dir={self.config_dir}", "--out=json",
                "--retcode-passthrough", "--log-level=quiet", *args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            log = (self.base / "minion.log").read_text().splitlines()
            raise AssertionError(
                f"salt-call {' '.join(args)} hung for {timeout}s; minion log ends:\n" + "\n".join(log[-6:])
            ) from None
        try:
            output = json.loads(proc.stdout)["local"] if proc.stdout.strip() else None
        except (ValueError, KeyError):
            output = proc.stdout + proc.stderr
        if check and proc.returncode != 0:
            raise RuntimeError(f"salt-call {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.returncode, output, proc.stderr

    def apply(self, sls="postfix", test=False, check=False, timeout=300):
        """state.apply; returns (returncode, {state_id: result dict})."""
        args = ["state.apply", sls]
        if test:
            args.append("test=True")
        rc, output, _ = self.salt_call(*args, check=check, timeout=timeout)
        return rc, output


def changed_states(result):
    """The states of a state.apply result that reported changes."""
    return {key: value for key, value in result.items() if isinstance(value, dict) and value.get("changes")}
