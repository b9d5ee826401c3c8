"""Shared set-up of the browser tests: Debian chromium through Playwright, a local Streamlit.

Never runs ``playwright install``: it uses /usr/bin/chromium (tests skip when absent).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(tmp_path_factory, **env_extra: str):
    """``streamlit run app.py`` on a free local port with a temporary run store.

    Yields ``{"url", "runs", "server_start_s", "log"}``; ``env_extra`` adds environment
    variables. Fails the test (with the server's log) when it does not start within 60 s.
    """
    runs = tmp_path_factory.mktemp("runs")
    port = free_port()
    env = {**os.environ, "FLUXCORE_RUNS_DIR": str(runs), "PYTHONUNBUFFERED": "1", **env_extra}
    env.pop("FLUXCORE_DATA", None)
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - t0 > 60:
            proc.kill()
            pytest.fail("streamlit did not start: " + Path(log.name).read_text()[-2000:])
        time.sleep(0.1)
    try:
        yield {"url": url, "runs": runs, "server_start_s": time.perf_counter() - t0, "log": log.name}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
