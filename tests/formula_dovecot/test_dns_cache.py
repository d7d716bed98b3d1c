"""postfix.performance.dns_cache (R10): a local caching resolver started by
the formula, named in resolv.conf, answering from its cache; clean puts the
old resolv.conf back."""

import json
import os
import pathlib
import signal

import pytest

from tests.harness.masterless import changed_states
from tests.harness.procs import run

UPSTREAM = "127.0.0.36"
CACHE = "127.0.0.35"
RESOLV_CONF = pathlib.Path("/etc/resolv.conf")
RUNNING = "pidfile_service_|-postfix-performance-dns-cache-service-running_|-{backend}_|-running"


@pytest.fixture(scope="module")
def upstream(sandbox_base):
    """A DNS server answering 192.0.2.10 for all of cache.test, logging every query."""
    directory = sandbox_base / "h4b-upstream-dns"
    directory.mkdir()
    log = directory / "queries.log"
    pidfile = directory / "dnsmasq.pid"
    run(["dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", f"--listen-address={UPSTREAM}",
         "--bind-interfaces", f"--pid-file={pidfile}", "--user=root", "--log-queries", f"--log-facility={log}",
         "--local-ttl=300", "--address=/cache.test/192.0.2.10"])
    yield log
    run(["kill", pidfile.read_text().strip()], check=False)


@pytest.fixture
def resolv_conf():
    """The namespace's /etc/resolv.conf (a bind mount: restored in place)."""
    original = RESOLV_CONF.read_text()
    yield RESOLV_CONF
    RESOLV_CONF.write_text(original)


@pytest.fixture
def cache_site(make_dovecot_site, resolv_conf):
    site = make_dovecot_site(None, "127.0.0.34")
    yield site
    pidfile = site.base / "dns-cache" / "cache.pid"
    if pidfile.exists():
        run(["kill", pidfile.read_text().strip()], check=False)


def cache_pillar(site, backend, forwarders=(UPSTREAM,)):
    directory = site.base / "dns-cache"
    return {"performance": {"dns_cache": {
        "enabled": True, "backend": backend, "listen": CACHE, "forwarders": list(forwarders),
        "resolv_conf": str(RESOLV_CONF), "config_file": str(directory / f"{backend}.conf"),
        "pidfile": str(directory / "cache.pid"), "forward_local_zones": ["test"],
    }}}


def apply_cache(site, backend, test=False, **kwargs):
    site.cache_pillar = cache_pillar(site, backend, **kwargs)
    rc, result = site.apply("postfix.performance.dns_cache", test=test, **site.cache_pillar)
    assert rc == 0, json.dumps(result, indent=1)
    return result


def lookup(name):
    """Resolve NAME the way the host does: through /etc/resolv.conf."""
    return run(["dig", "+short", "+time=2", "+tries=1", name], check=False).stdout.strip()


def upstream_queries(log, name):
    return sum(f"query[A] {name} from" in line for line in log.read_text().splitlines())


@pytest.mark.parametrize("backend", ["unbound", "dnsmasq"])
def test_cache_answers_through_resolv_conf(cache_site, upstream, resolv_conf, backend):
    original = resolv_conf.read_text()
    result = apply_cache(cache_site, backend)
    assert result[RUNNING.format(backend=backend)]["changes"]["pid"]["new"]
    assert resolv_conf.read_text().splitlines()[-1] == f"nameserver {CACHE}"

    name = f"{backend}.cache.test"
    assert lookup(name) == "192.0.2.10"
    assert lookup(name) == "192.0.2.10"
    assert upstream_queries(upstream, name) == 1, "the second answer must come from the cache"

    rc, again = cache_site.apply("postfix.performance.dns_cache", **cache_site.cache_pillar)
    assert rc == 0 and changed_states(again) == {}

    cache_site.apply("postfix.performance.dns_cache_clean", **cache_site.cache_pillar)
    assert resolv_conf.read_text() == original
    assert not pathlib.Path(cache_site.cache_pillar["performance"]["dns_cache"]["config_file"]).exists()


def test_config_change_restarts_cache(cache_site, upstream):
    first = apply_cache(cache_site, "unbound", forwarders=["127.0.0.37"])
    old_pid = first[RUNNING.format(backend="unbound")]["changes"]["pid"]["new"]
    assert "192.0.2.10" not in lookup("restart.cache.test"), "127.0.0.37 runs no DNS server"

    predicted = apply_cache(cache_site, "unbound", test=True)
    assert predicted[RUNNING.format(backend="unbound")]["result"] is None
    assert "127.0.0.37" in pathlib.Path(cache_site.cache_pillar["performance"]["dns_cache"]["config_file"]).read_text()

    changed = apply_cache(cache_site, "unbound")
    assert changed[RUNNING.format(backend="unbound")]["changes"]["pid"]["old"] == old_pid
    assert lookup("restart.cache.test") == "192.0.2.10"


def test_chrooted_postfix_gets_a_copy(cache_site, upstream):
    cache_site.postfix.postconf("-F", "smtp/unix/chroot = y")
    apply_cache(cache_site, "dnsmasq")
    copy = cache_site.postfix.queue_dir / "etc" / "resolv.conf"
    assert copy.read_text().splitlines()[-1] == f"nameserver {CACHE}"
    assert lookup("chroot.cache.test") == "192.0.2.10"


def test_dnsmasq_without_forwarders_is_refused(cache_site, resolv_conf):
    original = resolv_conf.read_text()
    site = cache_site
    site.cache_pillar = cache_pillar(site, "dnsmasq", forwarders=())
    rc, result = site.apply("postfix.performance.dns_cache", **site.cache_pillar)
    assert rc != 0
    assert "postfix:performance:dns_cache:forwarders" in json.dumps(result)
    assert resolv_conf.read_text() == original
    assert not (site.base / "dns-cache").exists()


def test_resolver_that_does_not_answer_is_not_named_in_resolv_conf(cache_site, upstream, resolv_conf):
    original = resolv_conf.read_text()
    apply_cache(cache_site, "dnsmasq")
    resolv_conf.write_text(original)
    pid = int((cache_site.base / "dns-cache" / "cache.pid").read_text())
    os.kill(pid, signal.SIGSTOP)  # hung: its pid file names a live dnsmasq that answers nothing
    try:
        rc, result = cache_site.apply("postfix.performance.dns_cache", **cache_site.cache_pillar)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert rc != 0
    assert f"dnsmasq runs but does not answer dig @{CACHE}" in result[RUNNING.format(backend="dnsmasq")]["comment"]
    assert resolv_conf.read_text() == original


def test_non_loopback_listen_is_refused(cache_site, resolv_conf):
    original = resolv_conf.read_text()
    pillar = cache_pillar(cache_site, "dnsmasq")
    pillar["performance"]["dns_cache"]["listen"] = "192.0.2.53"
    rc, result = cache_site.apply("postfix.performance.dns_cache", **pillar)
    assert rc != 0
    assert "postfix:performance:dns_cache:listen 192.0.2.53 is not a loopback address" in json.dumps(result)
    assert resolv_conf.read_text() == original
    assert not (cache_site.base / "dns-cache").exists()
