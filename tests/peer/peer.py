"""Start the test peer (server.py) and the fault-injecting proxy (proxy.py) from tests.

Import from any test directory::

    import sys, pathlib
    sys.path.insert(0, str(REPO / "tests" / "peer"))
    from peer import start_server, start_proxy

    with start_server() as srv:                  # ws://127.0.0.1:<port>/
        url = srv.url("/echo")
        with start_proxy(srv.port) as px:        # another port in front of it
            url_via_proxy = px.url("/echo")
            px.blackhole(); px.passthrough(); px.reset()

    with start_server(tls=True) as srv:          # wss://, certificate from a fresh CA
        srv.url("/echo"), srv.ca_pem_path

Both helpers spawn a child process with the test peer's Python, read its
``PORT <n>`` line (10 s bound), and on exit close its stdin, then SIGTERM, then
SIGKILL. The children also die with the spawning process (stdin EOF and
PR_SET_PDEATHSIG), so a crashed test leaves nothing behind.

Which Python runs the scripts (the same rule for C and C# tests):
``$CTRLCHAN_PYTHON`` if set, else ``<repo>/.venv/bin/python`` if it exists (made by
scripts/setup-venv.sh), else the current interpreter. ``python_executable()`` and the
``SERVER_SCRIPT``/``PROXY_SCRIPT``/``MAKE_CERTS_SCRIPT`` constants give the paths.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from contextlib import contextmanager
from typing import IO, Iterator, List, Optional

PEER_DIR = Path(__file__).resolve().parent
REPO_ROOT = PEER_DIR.parent.parent
SERVER_SCRIPT = PEER_DIR / "server.py"
PROXY_SCRIPT = PEER_DIR / "proxy.py"
MAKE_CERTS_SCRIPT = PEER_DIR / "make_certs.py"
STARTUP_TIMEOUT = 10.0
COMMAND_TIMEOUT = 10.0

__all__ = [
    "PEER_DIR",
    "REPO_ROOT",
    "SERVER_SCRIPT",
    "PROXY_SCRIPT",
    "MAKE_CERTS_SCRIPT",
    "PeerError",
    "PeerServer",
    "PeerProxy",
    "python_executable",
    "start_server",
    "start_proxy",
]


class PeerError(RuntimeError):
    """The peer process did not start or did not answer in time."""


def python_executable() -> str:
    """The interpreter that runs the peer scripts (needs `websockets` and `trustme`)."""
    env = os.environ.get("CTRLCHAN_PYTHON")
    if env:
        return env
    venv = REPO_ROOT / ".venv" / "bin" / "python"
    if venv.exists():
        return str(venv)
    return sys.executable


class _Child:
    """A child process whose stdout is read line by line on a daemon thread."""

    def __init__(self, name: str, argv: List[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,  # inherited: shows up in the test's captured output
            text=True,
            bufsize=1,
            close_fds=True,
            cwd=str(REPO_ROOT),
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self.lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def read_line(self, timeout: float, what: str) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise PeerError(f"{self.name}: no {what} within {timeout:.0f} s") from None
        if line is None:
            code = self.proc.poll()
            raise PeerError(f"{self.name}: exited (status {code}) before printing {what}")
        return line

    def read_port(self) -> int:
        line = self.read_line(STARTUP_TIMEOUT, "PORT line")
        word, _, value = line.partition(" ")
        if word != "PORT" or not value.isdigit():
            raise PeerError(f"{self.name}: expected 'PORT <n>', got {line!r}")
        return int(value)

    def send_line(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        proc = self.proc
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.close()  # the polite way: EOF on stdin
            except OSError:
                pass
        for sig, wait in ((None, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if sig is not None and proc.poll() is None:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        if proc.stdout is not None:
            proc.stdout.close()


class PeerServer:
    """A running tests/peer/server.py."""

    def __init__(self, child: _Child, port: int, ca_pem_path: Optional[str]) -> None:
        self._child = child
        self.port = port
        self.host = "127.0.0.1"
        self.ca_pem_path = ca_pem_path
        self.tls = ca_pem_path is not None
        self.scheme = "wss" if self.tls else "ws"

    @property
    def pid(self) -> int:
        return self._child.proc.pid

    def url(self, path: str = "/echo", host: Optional[str] = None) -> str:
        """``ws://127.0.0.1:<port><path>`` (``wss://`` with TLS). `host` may be "localhost"."""
        if not path.startswith("/"):
            path = "/" + path
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def stop(self) -> None:
        self._child.stop()


class PeerProxy:
    """A running tests/peer/proxy.py in front of a target port."""

    def __init__(self, child: _Child, port: int, target_port: int) -> None:
        self._child = child
        self.port = port
        self.host = "127.0.0.1"
        self.target_port = target_port
        self._lock = threading.Lock()

    @property
    def pid(self) -> int:
        return self._child.proc.pid

    def url(self, path: str = "/echo", scheme: str = "ws", host: Optional[str] = None) -> str:
        """A URL that reaches the target through this proxy."""
        if not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def command(self, command: str) -> str:
        """Send one command; return the text after ``OK <command>`` ("" for most)."""
        with self._lock:
            self._child.send_line(command)
            line = self._child.read_line(COMMAND_TIMEOUT, f"answer to {command!r}")
        expected = f"OK {command}"
        if not line.startswith(expected):
            raise PeerError(f"proxy: expected {expected!r}, got {line!r}")
        return line[len(expected):].strip()

    def blackhole(self) -> None:
        """Keep connections open but drop every byte both ways (dead NAT / frozen peer)."""
        self.command("blackhole")

    def passthrough(self) -> None:
        """Forward bytes again."""
        self.command("pass")

    def reset(self) -> None:
        """Abort every current connection with a TCP RST on both sides."""
        self.command("reset")

    def nat(self, timeout_ms: Optional[int]) -> None:
        """NAT mode: forget (silently blackhole) a connection idle longer than `timeout_ms`;
        None turns it off. Takes effect at once, also for current connections."""
        self.command(f"nat {timeout_ms if timeout_ms else 'off'}")

    def stats(self) -> dict[str, int]:
        """connections, accepted, up, down, dropped (byte counts since start), nat_forgotten."""
        text = self.command("stats")
        return {k: int(v) for k, v in (item.split("=", 1) for item in text.split())}

    def stop(self) -> None:
        self._child.stop()


@contextmanager
def start_server(tls: bool = False, key_type: str = "ecdsa") -> Iterator[PeerServer]:
    """Run tests/peer/server.py on an ephemeral 127.0.0.1 port for the `with` block.

    With ``tls=True`` a fresh CA and a localhost/127.0.0.1 certificate are made in a
    temporary directory; ``ca_pem_path`` is the CA a client must trust.
    """
    with tempfile.TemporaryDirectory(prefix="ctrlchan-peer-") as tmp:
        argv = [python_executable(), str(SERVER_SCRIPT), "--port", "0"]
        ca_pem_path: Optional[str] = None
        if tls:
            out = subprocess.run(
                [python_executable(), str(MAKE_CERTS_SCRIPT), tmp, "--key-type", key_type],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
            paths = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
            ca_pem_path = paths["CA"]
            argv += ["--tls-cert", paths["CERT"], "--tls-key", paths["KEY"]]
        child = _Child("peer server", argv)
        try:
            port = child.read_port()
            yield PeerServer(child, port, ca_pem_path)
        finally:
            child.stop()


@contextmanager
def start_proxy(target_port: int, nat_timeout_ms: Optional[int] = None) -> Iterator[PeerProxy]:
    """Run tests/peer/proxy.py in front of 127.0.0.1:`target_port` for the `with` block
    (in NAT mode from the start with `nat_timeout_ms`)."""
    argv = [python_executable(), str(PROXY_SCRIPT), "--target-port", str(target_port)]
    if nat_timeout_ms:
        argv += ["--nat-timeout-ms", str(nat_timeout_ms)]
    child = _Child("peer proxy", argv)
    try:
        port = child.read_port()
        yield PeerProxy(child, port, target_port)
    finally:
        child.stop()
