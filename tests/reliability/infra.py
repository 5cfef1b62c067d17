"""Fault tools of the reliability suite: private servers to stop, restart and pause, a
PostgreSQL-aware proxy that cuts a connection at COMMIT, and the consumer as a process.

Scenarios that stop, restart or pause a server use a private one (`PrivatePostgres`,
`PrivateRabbitMQ`) started in a directory of their own on free ports, never the shared servers
of the machine, which other tests use at the same time. Per-connection faults (a proxy, a lock
on the test's own schema) may use the shared servers.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from factflow.transport.publishing import Unroutable, outgoing
from factflow.transport.rabbitmq import RabbitMQTransport
from reliability.ledger import Ledger
from tcp_proxy import TcpProxy

CONSUMED = ("user", "account", "card", "goal")
SUBSCRIPTION = [f"{domain}.*" for domain in CONSUMED]


def unavailable(reason: str) -> None:
    """Skip for want of a tool, or fail when CI requires every service."""
    if os.environ.get("FACTFLOW_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason}; FACTFLOW_REQUIRE_SERVICES=1 requires it")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.2)
    return False


def _owned_directory(prefix: str, user: str) -> Path:
    """A fresh directory in /tmp that `user` owns (server tools refuse to run as root)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    directory.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(directory, user)
    return directory


def _as(user: str) -> list[str]:
    return ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb, pg_ctl) on a free port: `stop` it
    (``immediate`` is a crash), `start` it again; `close` removes it."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            unavailable("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are missing")
        self._bin = Path(found[-1]).parent
        self.port = free_port()
        self.directory = _owned_directory("factflow-pg-", "postgres")
        self._data = self.directory / "data"
        subprocess.run(
            [*_as("postgres"), str(self._bin / "initdb"), "-D", str(self._data), "-U",
             "postgres", "-A", "trust", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.start()

    def url(self, schema: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?schema={schema}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        self._ctl("start", "-w", "-l", str(self.directory / "server.log"), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-w", "-m", mode)

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*_as("postgres"), str(self._bin / "pg_ctl"), "-D", str(self._data), *args],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own (its node name, ports, data and log directories, no
    plugins) beside the shared one: `stop_app`/`start_app` it, `pause` (SIGSTOP) and `resume`
    it; `close` stops it and removes its files."""

    def __init__(self) -> None:
        if shutil.which("rabbitmq-server") is None or not Path("/usr/lib/rabbitmq/bin").is_dir():
            unavailable("rabbitmq-server is not installed")
        self.node = f"factflow{uuid.uuid4().hex[:8]}@localhost"
        self.port, dist = free_port(), free_port()
        self.directory = _owned_directory("factflow-mq-", "rabbitmq")
        config = self.directory / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.directory / "env.conf").write_text("")
        (self.directory / "enabled_plugins").write_text("[].\n")
        for name in ("mnesia", "log"):
            (self.directory / name).mkdir()
        if os.geteuid() == 0:
            for path in self.directory.rglob("*"):
                shutil.chown(path, "rabbitmq")
        self._env = {
            "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": "/var/lib/rabbitmq",  # where the Erlang cookie of the CLI tools is
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_CONF_ENV_FILE": str(self.directory / "env.conf"),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        with (self.directory / "server.out").open("wb") as out:
            self._server = subprocess.Popen(
                [*_as("rabbitmq"), "env", "-i", *(f"{k}={v}" for k, v in self._env.items()),
                 "/usr/lib/rabbitmq/bin/rabbitmq-server"],
                stdout=out, stderr=subprocess.STDOUT, cwd="/var/lib/rabbitmq",
                start_new_session=True,
            )  # fmt: skip
        if not wait_for_port(self.port, 90):
            self.close()
            raise RuntimeError(f"the private RabbitMQ node {self.node} did not start")
        self.pid = int(self.ctl("eval", "os:getpid().").strip().strip('"'))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 120) -> str:
        return subprocess.run(
            [*_as("rabbitmq"), "env", f"HOME={self._env['HOME']}", "rabbitmqctl", "-q", "-n",
             self.node, *args],
            check=True, capture_output=True, text=True, timeout=timeout,
        ).stdout  # fmt: skip

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.ctl("await_startup")

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def depths(self, group: str = "kpi") -> dict[str, int]:
        with RabbitMQTransport(self.url) as broker:
            return {q: broker.depth(q) for q in (group, f"{group}.bootstrap")}

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.resume()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.ctl("stop", timeout=60)
        try:
            self._server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self._server.pid, signal.SIGKILL)  # our own process group only
            self._server.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


class CommitCutter(TcpProxy):
    """A proxy in front of PostgreSQL that cuts a connection exactly at COMMIT, so that the
    client cannot know whether its transaction committed (a `TcpProxy` whose pump reads the
    protocol).

    It reads the client's side of the wire protocol. At the COMMITs numbered in `at` (counting
    every COMMIT through the proxy from 1) it either forwards the COMMIT, waits a moment so the
    server commits, and then cuts the connection before any answer reaches the client
    (`deliver=True`: committed, outcome unknown), or cuts without forwarding it
    (`deliver=False`: rolled back, outcome unknown). Clients must connect with
    ``sslmode=disable`` (the proxy reads plain protocol).
    """

    def __init__(self, target: tuple[str, int], at: Iterable[int], *, deliver: bool) -> None:
        self.at, self.deliver = set(at), deliver
        self.commits = 0
        self.cuts = 0
        super().__init__(target)

    def url(self, schema: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test?schema={schema}&sslmode=disable"

    def _is_cut(self, message: bytes) -> bool:
        """Count a COMMIT in this client message; True if the connection is to be cut at it."""
        kind, body = message[:1], message[5:]
        if kind != b"Q" or body.rstrip(b"\x00").strip().upper().rstrip(b";") != b"COMMIT":
            return False
        with self._lock:
            self.commits += 1
            cut = self.commits in self.at
            self.cuts += cut
        return cut

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ)
        selector.register(server, selectors.EVENT_READ)
        pending, started = b"", False  # client bytes not yet parsed; past the startup message?
        try:
            while True:
                for key, _ in selector.select():
                    if key.fileobj is server:
                        data = server.recv(65536)
                        if not data:
                            return
                        client.sendall(data)
                        continue
                    data = client.recv(65536)
                    if not data:
                        return
                    pending += data
                    out = bytearray()  # sent in one write: many small ones would wait on Nagle
                    while True:
                        if not started:  # startup (or SSL request): length first, no type byte
                            if len(pending) < 8:
                                break
                            size = struct.unpack("!I", pending[:4])[0]
                            if len(pending) < size:
                                break
                            code = struct.unpack("!I", pending[4:8])[0]
                            started = code != 80877103  # an SSL request comes before startup
                            out += pending[:size]
                            pending = pending[size:]
                            continue
                        if len(pending) < 5:
                            break
                        size = 1 + struct.unpack("!I", pending[1:5])[0]
                        if len(pending) < size:
                            break
                        message, pending = pending[:size], pending[size:]
                        if self._is_cut(message):
                            if self.deliver:
                                server.sendall(bytes(out) + message)
                                time.sleep(0.2)  # let the server commit; its answer is lost
                            return
                        out += message
                    server.sendall(out)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for end in (client, server):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    end.close()


def start_consumer(
    transport: str,
    warehouse: str,
    log: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    batch_size: int = 400,
) -> subprocess.Popen[bytes]:
    """`factflow run` of the banking app as a process of its own, its log appended to `log`."""
    with log.open("ab") as sink:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "factflow", "run", "--transport", transport, "--warehouse",
             warehouse, "--batch-size", str(batch_size), "--max-wait", "0.2", *extra],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )  # fmt: skip


def run_until_idle(
    transport: str, warehouse: str, log: Path, *, idle: float = 3, timeout: float = 300
) -> None:
    """Run the consumer until it found nothing for `idle` seconds; it must exit 0."""
    service = start_consumer(transport, warehouse, log, "--until-idle", "--max-wait", str(idle))
    try:
        code = service.wait(timeout=timeout)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    assert code == 0, log.read_text()[-4000:]


def declare_group(amqp_url: str, group: str = "kpi") -> None:
    """Declare the group's queues and bindings before publishing, as the service would."""
    with RabbitMQTransport(amqp_url) as broker:
        broker.subscribe(group, SUBSCRIPTION).close()


def publish(amqp_url: str, messages: Iterable[bytes]) -> int:
    """Publish the routable `messages` as source services would; returns how many."""
    refused: list[Unroutable] = []
    with RabbitMQTransport(amqp_url) as broker:
        return broker.publish(outgoing(messages, refused))


def published(amqp_url: str, messages: list[bytes]) -> Ledger:
    """A ledger of `messages`, published to the group's queue (declared first)."""
    ledger = Ledger()
    ledger.record_all(messages)
    declare_group(amqp_url)
    publish(amqp_url, messages)
    return ledger


def stopped(process: subprocess.Popen[bytes], timeout: float = 120) -> int:
    """The exit code of `process` (negative: killed by that signal), killing it if it hangs."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


class SteadyPublisher:
    """Publishes `messages` in chunks of `chunk`, `pause` seconds apart, on a thread: load that
    goes on during a fault. A chunk the broker did not confirm is published again (consumers
    ignore the copies), so that in the end every message was published at least once."""

    def __init__(
        self, amqp_url: str, messages: list[bytes], *, chunk: int = 200, pause: float = 0.1
    ) -> None:
        self.amqp_url, self.messages, self.chunk, self.pause = amqp_url, messages, chunk, pause
        self.retries = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def join(self, timeout: float = 300) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the publisher did not finish"
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        from factflow.errors import TransportUnavailable

        try:
            for start in range(0, len(self.messages), self.chunk):
                part = self.messages[start : start + self.chunk]
                deadline = time.monotonic() + 180
                while True:
                    try:
                        publish(self.amqp_url, part)
                        break
                    except TransportUnavailable:
                        if time.monotonic() > deadline:
                            raise
                        self.retries += 1
                        time.sleep(0.5)
                time.sleep(self.pause)
        except BaseException as error:
            self.error = error
