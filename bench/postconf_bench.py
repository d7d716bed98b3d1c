"""Manage 30 main.cf parameters three ways on sandbox config dirs and compare.

1. the ``postconf.parameters`` state (called through Salt's loader, module_dirs=[repo]),
2. the baseline: one ``postconf -e`` process per parameter,
3. a rendered template: Jinja2 renders all of main.cf, written when it differs, then one ``postfix check``.

For each: wall time and the postconf/postfix processes it started itself, on a
first apply and on a no-op re-apply, with ratios against the baseline. (The
state and the template also run ``postfix check``, which starts helpers of its
own; those are not counted.) Every phase starts from a settled main.cf (one
older than Postfix's ~2 s "freshly edited" window), like a real re-apply.

Run as root: ``.venv/bin/python bench/postconf_bench.py``. It makes its own
loopback-only network namespace (postconf checks inet_interfaces against local
addresses) and removes it and its scratch directory at the end.
"""

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import jinja2

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.harness.netns import Namespace  # noqa: E402  (needs the repository on sys.path)
from tests.harness.postfix_instance import PostfixInstance  # noqa: E402

PARAMETERS = {
    "biff": "no",
    "message_size_limit": "20971520",
    "mailbox_size_limit": "0",
    "default_process_limit": "75",
    "disable_vrfy_command": "yes",
    "smtpd_banner": "$myhostname ESMTP NO UCE",
    "smtpd_helo_required": "yes",
    "smtpd_helo_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_invalid_helo_hostname",
    "smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
    "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_tls_security_level": "may",
    "smtp_tls_security_level": "may",
    "smtpd_tls_loglevel": "1",
    "smtpd_timeout": "60s",
    "smtpd_error_sleep_time": "1s",
    "smtpd_soft_error_limit": "10",
    "smtpd_hard_error_limit": "20",
    "smtpd_client_connection_count_limit": "20",
    "smtpd_client_connection_rate_limit": "60",
    "anvil_rate_time_unit": "60s",
    "append_dot_mydomain": "no",
    "readme_directory": "no",
    "recipient_delimiter": "+",
    "maximal_queue_lifetime": "3d",
    "bounce_queue_lifetime": "3d",
    "delay_warning_time": "4h",
    "header_size_limit": "102400",
    "virtual_mailbox_base": "/var/vmail",
    "virtual_minimum_uid": "5000",
}
assert len(PARAMETERS) == 30

MAIN_CF_TEMPLATE = jinja2.Template(
    "# Managed by a template.\n{% for name, value in params.items() %}{{ name }} = {{ value }}\n{% endfor %}"
)
COUNTED = {"postconf", "postfix"}


class ProcessCounter:
    """Counts postconf/postfix processes this Python process starts (subprocess.Popen is what
    Salt's cmd.run_all, the postfix module and this script use)."""

    def __init__(self):
        self.count = 0
        self._original = subprocess.Popen

    def __enter__(self):
        counter = self

        class CountingPopen(self._original):
            def __init__(self, args, *rest, **kwargs):
                program = args[0] if isinstance(args, (list, tuple)) else str(args).split()[0]
                if os.path.basename(str(program)) in COUNTED:
                    counter.count += 1
                super().__init__(args, *rest, **kwargs)

        subprocess.Popen = CountingPopen
        return self

    def __exit__(self, *exc):
        subprocess.Popen = self._original


def settle(config_dir):
    """Make main.cf look old, as it is on a real re-apply (no ~2 s "fresh file" wait)."""
    then = time.time() - 60
    os.utime(config_dir / "main.cf", (then, then))


def measure(apply, config_dir):
    settle(config_dir)
    with ProcessCounter() as counter:
        started = time.monotonic()
        apply()
        elapsed = time.monotonic() - started
    return elapsed, counter.count


def make_instance(base, label):
    instance = PostfixInstance(base / label, address="127.0.0.2").create()
    settle(instance.config_dir)
    return instance


def salt_states(base):
    """Salt's execution and state modules with this repository's _modules/ and _states/."""
    import salt.config
    import salt.loader

    opts = salt.config.minion_config(None)
    opts.update(
        {
            "file_client": "local",
            "module_dirs": [str(REPO)],
            "file_roots": {"base": []},
            "root_dir": str(base / "salt"),
            "cachedir": str(base / "salt" / "cache"),
            "extension_modules": str(base / "salt" / "extmods"),
            "test": False,
        }
    )
    opts["grains"] = salt.loader.grains(opts)
    functions = salt.loader.minion_mods(opts)
    return salt.loader.states(opts, functions, salt.loader.utils(opts), {})


def apply_with_state(states, config_dir):
    def apply():
        ret = states["postconf.parameters"](name="bench", params=PARAMETERS, config_dir=str(config_dir))
        if ret["result"] is not True:
            raise RuntimeError(f"postconf.parameters failed: {ret['comment']}")

    return apply


def apply_one_postconf_per_parameter(config_dir):
    def apply():
        for name, value in PARAMETERS.items():
            subprocess.run(["postconf", "-c", str(config_dir), "-e", f"{name}={value}"], check=True)

    return apply


def apply_template(instance):
    main_cf = instance.config_dir / "main.cf"
    params = {**instance.host_parameters(), **PARAMETERS}

    def apply():
        rendered = MAIN_CF_TEMPLATE.render(params=params).encode()
        if main_cf.read_bytes() == rendered:
            return
        main_cf.write_bytes(rendered)
        subprocess.run(["postfix", "-c", str(instance.config_dir), "check"], check=True)

    return apply


def reference_timings(config_dir):
    """Postfix's cool-down stall after a plain postconf -e, and the cost of postfix check."""
    postconf = ["postconf", "-c", str(config_dir)]
    subprocess.run([*postconf, "-e", "biff=yes"], check=True)
    started = time.monotonic()
    subprocess.run([*postconf, "-n"], check=True, capture_output=True)
    stall = time.monotonic() - started
    settle(config_dir)
    started = time.monotonic()
    subprocess.run(["postfix", "-c", str(config_dir), "check"], check=True)
    return stall, time.monotonic() - started


def report(results, stall, check):
    baseline = results["postconf -e per parameter"]
    print(f"{'method':<30} {'first apply':>20} {'no-op re-apply':>20}   ratio vs baseline (first / no-op)")
    for method, runs in results.items():
        cells = "".join(f"{seconds:>10.2f}s {procs:>3d} procs" for seconds, procs in runs)
        ratios = " / ".join(
            f"time x{seconds / base_seconds:.2f} procs x{procs / base_procs:.2f}"
            for (seconds, procs), (base_seconds, base_procs) in zip(runs, baseline, strict=True)
        )
        print(f"{method:<30}{cells}   {ratios}")
    print(
        f"\nFor reference: the first postconf read after a main.cf write stalled {stall:.2f}s; "
        f"postfix check took {check:.2f}s.\nThe state dates main.cf back after its write, so no later tool "
        "stalls, and runs postfix check; the baseline checks nothing and leaves the stall to the next Postfix "
        "tool (e.g. the reload)."
    )


def main():
    namespace = Namespace().create().enter()
    base = pathlib.Path(tempfile.mkdtemp(prefix="postconf-bench-", dir="/var/tmp"))
    base.chmod(0o755)
    try:
        states = salt_states(base)
        plans = {
            "postconf.parameters state": apply_with_state(states, make_instance(base, "state").config_dir),
            "postconf -e per parameter": apply_one_postconf_per_parameter(make_instance(base, "loop").config_dir),
        }
        template_instance = make_instance(base, "template")
        plans["rendered template"] = apply_template(template_instance)
        config_dirs = {
            "postconf.parameters state": base / "state" / "etc",
            "postconf -e per parameter": base / "loop" / "etc",
            "rendered template": template_instance.config_dir,
        }
        results = {
            method: [measure(apply, config_dirs[method]) for _ in ("first apply", "no-op re-apply")]
            for method, apply in plans.items()
        }
        report(results, *reference_timings(config_dirs["postconf -e per parameter"]))
    finally:
        shutil.rmtree(base, ignore_errors=True)
        namespace.delete()


if __name__ == "__main__":
    main()
