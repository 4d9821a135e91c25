"""Debian's nginx on a loopback port, serving a directory: one helper for tests and benchmarks.

nginx is started from a config file written here (``-p PREFIX -c CONF``, ``daemon off``, pid and
logs under ``prefix``), as shared/NOTES.md describes; run as root, its workers would drop to an
unprivileged user, so the config says ``user root;`` and the served tree is made readable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["NGINX", "free_port", "nginx", "stop", "wait_listening"]

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
)

CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format owm '$connection $connection_requests "$request" $status "$http_range" '
                   '$body_bytes_sent';
    access_log {access_log};
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/octet-stream;
    types {{ }}
    sendfile on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def nginx(www: Path, prefix: Path, *, access_log: bool = True) -> Iterator[str]:
    """Serve ``www``; yields the base URL ``http://127.0.0.1:PORT/`` (trailing slash).

    The access log (``prefix/access.log``, format ``owm``: connection, request number on it,
    request line, status, Range header, body bytes) lets tests count requests.

    Raises:
        RuntimeError: nginx is missing, exits, or does not listen within 30 s.
    """
    if NGINX is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    for path in [www.parent, www, *www.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(
        CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            prefix=prefix,
            port=port,
            root=www,
            access_log=f"{prefix}/access.log owm" if access_log else "off",
        )
    )
    proc = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_listening(proc, port, "nginx", prefix / "error.log")
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


def wait_listening(
    proc: subprocess.Popen[bytes], port: int, name: str, log: Path | None = None
) -> None:
    """Wait until ``proc`` accepts connections on loopback ``port``.

    Raises:
        RuntimeError: it exited (with its stderr and ``log``), or did not listen within 30 s.
    """
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            extra = log.read_text() if log is not None and log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode}: {err}{extra}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start listening within 30 s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` (kill it if it does not exit within 30 s)."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
