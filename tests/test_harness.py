"""The sandbox itself: namespace, PostgreSQL, Postfix, Salt loaders."""

import pathlib
import smtplib
import socket

import psycopg


def test_namespace_is_loopback_only(netns):
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert "127.0.0.53" in pathlib.Path("/etc/resolv.conf").read_text()


def test_postgresql_cluster_answers(pg):
    assert pg.psql("SELECT 1") == "1"
    pg.create_role("harness_probe", "probe-secret")
    with psycopg.connect(host="127.0.0.1", port=5432, user="harness_probe", password="probe-secret",
                         dbname="postgres") as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "harness_probe"


def test_postfix_sandbox_starts_and_stops(postfix_sandbox):
    instance = postfix_sandbox.start()
    with smtplib.SMTP(instance.address, 25, timeout=10) as smtp:
        code, banner = smtp.docmd("NOOP")
        assert code == 250
    assert "/etc/postfix" not in instance.postconf("-h", "config_directory")
    instance.stop()
    assert not instance.status()
    with socket.socket() as sock:
        assert sock.connect_ex((instance.address, 25)) != 0


def test_salt_loaders_find_repo_modules(minion_opts):
    assert str(pathlib.Path(__file__).resolve().parent.parent) in minion_opts["module_dirs"]
