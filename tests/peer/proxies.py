#!/usr/bin/env python3
"""Real third-party proxies on loopback for the integration tests (stdlib only).

- ``tinyproxy`` (Debian package ``tinyproxy``): HTTP CONNECT, with ``BasicAuth`` unless told
  otherwise; no ``ConnectPort`` line, so CONNECT to any port is allowed.
- ``danted`` (Debian package ``dante-server``): SOCKS5, with RFC 1929 username/password unless
  told otherwise. Dante checks those against the system's password database, so this helper
  creates a system user ``ctrlchan-socks`` (no home, shell ``nologin``) and sets its password;
  that needs root, as does reading ``/etc/shadow``. Without auth it runs as any user.

Both listen on a free port of 127.0.0.1 and only pass connections to 127.0.0.0/8 (danted: to
127.0.0.1 only, so a CONNECT to 127.0.0.2 is refused by rule: SOCKS reply 0x02).
``scripts/setup-tools.sh`` installs both packages.

Python (pytest)::

    from proxies import start_tinyproxy, start_danted
    with start_tinyproxy() as p:           # or start_danted(), auth=False for none
        p.port, p.uri                      # "http://ctrlchan:<password>@127.0.0.1:<port>"
        p.uri_with(password="wrong")       # same proxy, other credentials
        p.tunnels()                        # tunnels opened so far (read from the proxy's log)

Process protocol (C and C# tests), like server.py and proxy.py::

    $CTRLCHAN_PYTHON tests/peer/proxies.py tinyproxy|danted [--no-auth]
      stdout, once listening:  "PORT <n>", "URI <uri with credentials>", "USER <u>",
                               "PASSWORD <p>" (the last two empty without auth)
      stdin commands:          "tunnels" -> "OK tunnels <n>", "quit" -> "OK quit", then exit
    It stops the proxy and exits on stdin EOF (a pipe/socket/tty stdin), SIGTERM/SIGINT, or,
    on Linux, when its parent dies.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import Iterator, List, Optional, Sequence
from urllib.parse import quote

HOST = "127.0.0.1"
TINYPROXY_USER = "ctrlchan"
SOCKS_USER = "ctrlchan-socks"
# Test-only credentials for loopback proxies; the system user has no home and no login shell.
PASSWORD = "ctrlchan-proxy-test"
START_TIMEOUT_S = 10.0


class ProxyUnavailable(RuntimeError):
    """The proxy program is not installed, or cannot run here (say why and how to fix it)."""


def _find(program: str) -> str:
    found = shutil.which(program) or next(
        (p for p in (f"/usr/sbin/{program}", f"/usr/bin/{program}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise ProxyUnavailable(
            f"{program} is not installed: run scripts/setup-tools.sh (apt-get install tinyproxy dante-server)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _set_parent_death_signal() -> None:
    # Runs in the child between fork and exec: the proxy gets SIGTERM when this process dies.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class RunningProxy:
    """A started proxy. `uri` carries the credentials (None without auth)."""

    def __init__(self, kind: str, scheme: str, port: int, user: Optional[str], password: Optional[str],
                 proc: "subprocess.Popen[bytes]", workdir: str, log_path: str) -> None:
        self.kind = kind
        self.scheme = scheme
        self.host = HOST
        self.port = port
        self.user = user
        self.password = password
        self.proc = proc
        self.workdir = workdir
        self.log_path = log_path

    @property
    def uri(self) -> str:
        return self.uri_with(self.user, self.password)

    def uri_with(self, user: Optional[str] = None, password: Optional[str] = None, scheme: Optional[str] = None) -> str:
        """This proxy's URI with the given credentials (percent-encoded) and scheme
        (danted: ``socks5`` or ``socks5h``)."""
        auth = ""
        if user is not None:
            auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "") + "@"
        return f"{scheme or self.scheme}://{auth}{self.host}:{self.port}"

    def log(self) -> str:
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def tunnels(self) -> int:
        """Tunnels the proxy opened to a target so far, counted from its log."""
        marker = "Established connection to host" if self.kind == "tinyproxy" else "tcp/connect [:"
        return sum(1 for line in self.log().splitlines() if marker in line)

    def stop(self) -> None:
        """Stops the proxy (its whole process group: danted forks helpers) and removes its files."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # Helpers of the group that outlived their mother.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _launch(kind: str, argv: List[str], port: int, workdir: str, log_path: str) -> "subprocess.Popen[bytes]":
    out = open(os.path.join(workdir, "stdout.log"), "wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_set_parent_death_signal, cwd=workdir)
    finally:
        out.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return proc
        time.sleep(0.05)
    status = proc.poll()
    if status is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    logs = ""
    for p in (log_path, os.path.join(workdir, "stdout.log")):
        with contextlib.suppress(OSError), open(p, "r", errors="replace") as f:
            logs += f.read()
    raise ProxyUnavailable(f"{kind} did not listen on {HOST}:{port} (exit status {status}); its output:\n{logs}")


def _start(kind: str, make: "callable", attempts: int = 3) -> RunningProxy:
    # A free port can be taken by someone else before the proxy binds it: try a few.
    last: Optional[Exception] = None
    for _ in range(attempts):
        workdir = tempfile.mkdtemp(prefix=f"ctrlchan-{kind}-")
        try:
            return make(workdir, free_port())
        except ProxyUnavailable as e:
            shutil.rmtree(workdir, ignore_errors=True)
            last = e
            if "not installed" in str(e) or "needs root" in str(e):
                raise
    assert last is not None
    raise last


def _tinyproxy(auth: bool) -> RunningProxy:
    binary = _find("tinyproxy")

    def make(workdir: str, port: int) -> RunningProxy:
        log_path = os.path.join(workdir, "tinyproxy.log")
        conf = [
            f"Port {port}",
            f"Listen {HOST}",
            # Idle tunnels are what control channels are: keep them for an hour.
            "Timeout 3600",
            "MaxClients 200",
            "LogLevel Connect",
            f'LogFile "{log_path}"',
            f'PidFile "{os.path.join(workdir, "tinyproxy.pid")}"',
            "Allow 127.0.0.0/8",
        ]
        if auth:
            conf.append(f"BasicAuth {TINYPROXY_USER} {PASSWORD}")
        conf_path = os.path.join(workdir, "tinyproxy.conf")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        proc = _launch("tinyproxy", [binary, "-d", "-c", conf_path], port, workdir, log_path)
        return RunningProxy("tinyproxy", "http", port, TINYPROXY_USER if auth else None,
                            PASSWORD if auth else None, proc, workdir, log_path)

    return _start("tinyproxy", make)


def _ensure_socks_user() -> None:
    if os.geteuid() != 0:
        raise ProxyUnavailable("danted with username/password auth needs root (a system user, /etc/shadow)")
    if subprocess.run(["id", SOCKS_USER], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SOCKS_USER],
                       check=True)
    subprocess.run(["chpasswd"], input=f"{SOCKS_USER}:{PASSWORD}\n".encode(), check=True)


def _danted(auth: bool) -> RunningProxy:
    binary = _find("danted")
    if auth:
        _ensure_socks_user()

    def make(workdir: str, port: int) -> RunningProxy:
        log_path = os.path.join(workdir, "danted.log")
        conf = [
            f"logoutput: {log_path}",
            f"internal: {HOST} port = {port}",
            f"external: {HOST}",
            "clientmethod: none",
            f"socksmethod: {'username' if auth else 'none'}",
        ]
        if os.geteuid() == 0:
            conf += ["user.privileged: root", "user.unprivileged: nobody"]
        conf += [
            "timeout.negotiate: 30",
            "timeout.io: 0",
            "client pass {",
            "    from: 127.0.0.0/8 to: 0.0.0.0/0",
            "}",
            "socks pass {",
            "    from: 127.0.0.0/8 to: 127.0.0.1/32",
            "    command: connect",
            "    log: connect disconnect error",
            "}",
            "socks block {",
            "    from: 0.0.0.0/0 to: 0.0.0.0/0",
            "    log: connect error",
            "}",
        ]
        conf_path = os.path.join(workdir, "danted.conf")
        with open(conf_path, "w") as f:
            f.write("\n".join(conf) + "\n")
        argv = [binary, "-f", conf_path, "-p", os.path.join(workdir, "danted.pid"), "-N", "1"]
        proc = _launch("danted", argv, port, workdir, log_path)
        return RunningProxy("danted", "socks5", port, SOCKS_USER if auth else None,
                            PASSWORD if auth else None, proc, workdir, log_path)

    return _start("danted", make)


@contextlib.contextmanager
def start_tinyproxy(auth: bool = True) -> Iterator[RunningProxy]:
    """tinyproxy on a free loopback port for the `with` block (HTTP CONNECT, BasicAuth unless auth=False)."""
    p = _tinyproxy(auth)
    try:
        yield p
    finally:
        p.stop()


@contextlib.contextmanager
def start_danted(auth: bool = True) -> Iterator[RunningProxy]:
    """danted on a free loopback port for the `with` block (SOCKS5, username/password unless auth=False)."""
    p = _danted(auth)
    try:
        yield p
    finally:
        p.stop()


def _stdin_is_watched() -> bool:
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="tinyproxy or danted on a free loopback port")
    parser.add_argument("kind", choices=("tinyproxy", "danted"))
    parser.add_argument("--no-auth", action="store_true", help="no credentials required")
    args = parser.parse_args(argv)
    _set_parent_death_signal()
    proxy = (_tinyproxy if args.kind == "tinyproxy" else _danted)(not args.no_auth)

    def on_signal(signum: int, frame: object) -> None:
        proxy.stop()
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        print(f"PORT {proxy.port}")
        print(f"URI {proxy.uri}")
        print(f"USER {proxy.user or ''}")
        print(f"PASSWORD {proxy.password or ''}", flush=True)
        if _stdin_is_watched():
            for line in sys.stdin:
                cmd = line.strip()
                if cmd == "tunnels":
                    print(f"OK tunnels {proxy.tunnels()}", flush=True)
                elif cmd == "quit":
                    print("OK quit", flush=True)
                    break
                elif cmd:
                    print(f"ERR {cmd}", flush=True)
        else:
            while proxy.proc.poll() is None:
                time.sleep(1)
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
