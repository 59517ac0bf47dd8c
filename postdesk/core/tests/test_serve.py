"""`postdesk serve` runs every role, answers on its ports, stops cleanly on SIGTERM, and refuses a taken port."""

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from postdesk.testing.smtpsink import free_port


def postdesk(*args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "postdesk", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(POSTDESK_DATA_DIR=str(tmp_path), POSTDESK_SQLITE_SYNCHRONOUS="NORMAL")
    subprocess.run([sys.executable, "-m", "postdesk", "migrate", "-v", "0"], env=env, check=True)
    return env


def wait_for_http(url: str, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_serve_runs_web_smtp_lmtp_and_the_worker_and_stops_on_sigterm(env):
    http, smtp, lmtp = free_port(), free_port(), free_port()
    proc = postdesk(
        "serve",
        "--http",
        f"127.0.0.1:{http}",
        "--smtp",
        f"127.0.0.1:{smtp}",
        "--lmtp",
        f"127.0.0.1:{lmtp}",
        env=env,
    )
    try:
        assert b"Log in to postdesk" in wait_for_http(f"http://127.0.0.1:{http}/login/")
        wait_for_port(smtp)
        wait_for_port(lmtp)
        with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as client:
            assert client.ehlo()[0] == 250
        with smtplib.LMTP("127.0.0.1", lmtp, timeout=10) as client:
            assert client.lhlo()[0] == 250 if hasattr(client, "lhlo") else client.ehlo()[0] == 250
        ps = subprocess.run(
            ["ps", "-o", "args=", "--ppid", str(proc.pid)], capture_output=True, text=True
        ).stdout
        assert "worker" in ps and "smtpd" in ps and "web" in ps
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()[-3000:]


@pytest.mark.slow
def test_serve_refuses_a_port_that_is_taken(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = postdesk(
            "serve", "--http", f"127.0.0.1:{port}", "--smtp", "off", "--lmtp", "off", "--no-worker", env=env
        )
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"127.0.0.1:{port}" in out.decode() and "HTTP" in out.decode()
