"""A salt-master and its minions in the test namespace (pytest-salt-factories
daemons, each with its own config, cache and pki directories), serving this
repository the way a real master does: postfix/, _modules/ and _states/ from
its file root, pillar per minion through top.sls."""

import pathlib

import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
#: seconds a salt or salt-run call may take (a first apply installs nothing here, but starts daemons)
CLI_TIMEOUT = 240


class Fleet:
    """A master MASTER_ID and minions added with :meth:`add_minion`."""

    def __init__(self, base, salt_factories, master_id, state_top=None):
        self.base = pathlib.Path(base)
        self.file_root = self.base / "file-root"
        self.pillar_root = self.base / "pillar"
        self.pillars = {}
        self.minions = {}
        self._write_file_root(state_top or {})
        self.pillar_root.mkdir(mode=0o700, parents=True, exist_ok=True)  # pillar holds passwords
        self._write_pillar_top()
        self.master = salt_factories.salt_master_daemon(
            master_id,
            overrides={
                "file_roots": {"base": [str(self.file_root)]},
                "pillar_roots": {"base": [str(self.pillar_root)]},
                "pillar_source_merging_strategy": "recurse",
                "log_level_logfile": "info",
            },
        )
        self.salt_cli = self.master.salt_cli(timeout=CLI_TIMEOUT)
        self.salt_run_cli = self.master.salt_run_cli(timeout=CLI_TIMEOUT)

    def _write_file_root(self, state_top):
        self.file_root.mkdir(parents=True, exist_ok=True)
        for name in ("postfix", "_modules", "_states"):
            link = self.file_root / name
            if not link.is_symlink():
                link.symlink_to(REPO / name)
        (self.file_root / "top.sls").write_text(yaml.safe_dump({"base": state_top}))

    def _write_pillar_top(self):
        top = {"base": {minion: [self._pillar_name(minion)] for minion in self.pillars}}
        (self.pillar_root / "top.sls").write_text(yaml.safe_dump(top))

    @staticmethod
    def _pillar_name(minion):
        return "minion_" + minion.replace("-", "_").replace(".", "_")

    def set_pillar(self, minion, pillar):
        """MINION's whole pillar (a dict); minions see it after a pillar refresh."""
        self.pillars[minion] = pillar
        (self.pillar_root / f"{self._pillar_name(minion)}.sls").write_text(yaml.safe_dump(pillar))
        self._write_pillar_top()

    def start(self):
        self.master.start()
        return self

    def add_minion(self, minion, pillar):
        """Start a minion daemon MINION with PILLAR (its key accepted by the master)."""
        self.set_pillar(minion, pillar)
        daemon = self.master.salt_minion_daemon(minion, overrides={"log_level_logfile": "info"})
        daemon.start()
        self.minions[minion] = daemon
        return daemon

    def salt(self, tgt, *args, tgt_type=None):
        """``salt TGT ARGS``: the ProcessResult (``.data``: the returns, by minion when several)."""
        extra = [f"--{tgt_type}"] if tgt_type else []
        return self.salt_cli.run(*extra, *args, minion_tgt=tgt)

    def run(self, *args):
        """``salt-run ARGS``: the ProcessResult."""
        return self.salt_run_cli.run(*args)

    def stop(self):
        for daemon in self.minions.values():
            if daemon.is_running():
                daemon.terminate()
        if self.master.is_running():
            self.master.terminate()
