"""The embedded stack: MiniStack, the deployed template and the local services.

``up`` starts MiniStack on 127.0.0.1, deploys ``template.yaml`` to it and
starts the window assignment processor and the ticketing service as local
processes. Their PIDs go into a state file, and ``down`` stops exactly those.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from system import provision
from system.errors import EmbeddedStackError
from system.sale import SaleConfig
from system.settings import DEFAULT_STACK_NAME, Settings
from system.stack import StackResources, describe_stack

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_HOME = Path.home() / ".boxoffice"
STATE_FILE = "embedded.json"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 10
ENVIRONMENT_NAME = "local"
# The services run with this interpreter, so they see the same packages.
PYTHON = sys.executable


@dataclass
class EmbeddedState:
    """Record of what ``up`` started: ports, PIDs and service addresses."""

    home: str
    port: int
    ticketing_port: int
    processor_metrics_port: int
    ticketing_metrics_port: int
    stack_name: str = DEFAULT_STACK_NAME
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0
    # Set by `boxoffice up --prometheus` (system/prometheus.py); 0 when none.
    prometheus_port: int = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ticketing_url(self) -> str:
        return f"http://{HOST}:{self.ticketing_port}"

    @property
    def settings(self) -> Settings:
        return Settings(endpoint_url=self.endpoint_url, stack_name=self.stack_name)

    @property
    def secret_path(self) -> Path:
        return Path(self.home) / "token-secret"

    def save(self) -> None:
        path = Path(self.home) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, home: Path) -> EmbeddedState | None:
        path = home / STATE_FILE
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def resolve_home(home: Path | str | None = None) -> Path:
    """Return the state folder: the argument, ``BOXOFFICE_HOME`` or ~/.boxoffice."""
    chosen = Path(home or os.environ.get("BOXOFFICE_HOME") or DEFAULT_HOME)
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Return whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def running_state(home: Path | str | None = None) -> EmbeddedState | None:
    """Return the state of an embedded stack that is up, or ``None``."""
    state = EmbeddedState.load(resolve_home(home))
    if state is None:
        return None
    pid = state.pids.get("ministack")
    if pid is None or not _alive(pid):
        return None
    return state


def require_running(home: Path | str | None = None) -> EmbeddedState:
    """Return the state of the embedded stack that is up, or raise a clear error."""
    state = running_state(home)
    if state is None:
        raise EmbeddedStackError(
            "No embedded stack is running. Start one with `boxoffice up`, or "
            "pass --stack NAME for a deployed stack."
        )
    return state


def up(
    *,
    home: Path | str | None = None,
    port: int | None = None,
    ticketing_port: int | None = None,
    sale: SaleConfig | None = None,
    services: bool = True,
    progress: Callable[[str], None] = logger.info,
) -> EmbeddedState:
    """Start MiniStack, deploy the stack, configure a sale and start the services.

    Raises ``EmbeddedStackError`` when a stack is already up in ``home``, when a
    port is taken, or when a part fails to start. Whatever had started by then
    is stopped again.
    """
    folder = resolve_home(home)
    existing = running_state(folder)
    if existing is not None:
        raise EmbeddedStackError(
            f"An embedded stack is already up at {existing.endpoint_url} "
            f"(state in {folder}). Stop it with `boxoffice down`, or pass "
            "another --home."
        )
    leftover = EmbeddedState.load(folder)
    if leftover is not None:
        # MiniStack died, but the services it served may still run.
        for stopped in stop(leftover):
            progress(f"Stopped {stopped}, left from a stack whose MiniStack died")
    chosen_port = port or free_port()
    if port_in_use(chosen_port):
        raise EmbeddedStackError(
            f"Port {chosen_port} on {HOST} is already in use. Pass another "
            "--port, or omit it to pick a free one."
        )
    state = EmbeddedState(
        home=str(folder),
        port=chosen_port,
        ticketing_port=ticketing_port or free_port(),
        processor_metrics_port=free_port(),
        ticketing_metrics_port=free_port(),
        started_at=time.time(),
    )
    if port_in_use(state.ticketing_port):
        raise EmbeddedStackError(
            f"Ticketing port {state.ticketing_port} on {HOST} is already in use. "
            "Pass another --ticketing-port."
        )
    _write_secret(state.secret_path, secrets.token_urlsafe(32))
    try:
        progress(f"Starting MiniStack on {state.endpoint_url}")
        state.pids["ministack"] = _start_ministack(state)
        state.save()
        progress("Deploying the stack template")
        resources = _deploy(state)
        provision.configure_sale(state.settings, resources, sale or SaleConfig())
        if services:
            progress("Starting the window processor and the ticketing service")
            start_services(state)
    except BaseException:
        stop(state)
        raise
    state.save()
    return state


def start_services(state: EmbeddedState) -> None:
    """Start the window processor and the ticketing service for ``state``."""
    for name in ("processor", "ticketing"):
        if name not in state.pids or not _alive(state.pids[name]):
            state.pids[name] = _start_service(state, name)
    state.save()
    _wait_for_http(f"{state.ticketing_url}/healthz", state.pids["ticketing"])


def stop_service(state: EmbeddedState, name: str) -> bool:
    """Stop one service (``processor`` or ``ticketing``); return whether it ran."""
    pid = state.pids.pop(name, None)
    state.save()
    if pid is None or not _alive(pid):
        return False
    _terminate(pid)
    return True


def down(home: Path | str | None = None) -> list[str]:
    """Stop everything ``up`` started in ``home``; return what was stopped."""
    folder = resolve_home(home)
    state = EmbeddedState.load(folder)
    if state is None:
        return []
    return stop(state)


def stop(state: EmbeddedState) -> list[str]:
    """Stop the processes recorded in ``state`` by PID and remove the state file."""
    stopped = []
    for name in ("prometheus", "ticketing", "processor", "ministack"):
        pid = state.pids.get(name)
        if pid is not None and _alive(pid):
            _terminate(pid)
            stopped.append(f"{name} (pid {pid})")
    (Path(state.home) / STATE_FILE).unlink(missing_ok=True)
    return stopped


def service_environment(state: EmbeddedState) -> dict[str, str]:
    """Return the environment a local service or client of the stack runs with."""
    env = dict(os.environ)
    env.update(
        {
            "AWS_ENDPOINT_URL": state.endpoint_url,
            "AWS_REGION": state.settings.region,
            "AWS_DEFAULT_REGION": state.settings.region,
            "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "test"),
            "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "test"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "BOXOFFICE_STACK": state.stack_name,
            "BOXOFFICE_TOKEN_SECRET_FILE": str(state.secret_path),
            "BOXOFFICE_TICKETING_URL": state.ticketing_url,
        }
    )
    env.pop("AWS_PROFILE", None)
    return env


def _write_secret(path: Path, secret: str) -> None:
    # Created with mode 0600, so no other user can read it even for a moment.
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secret)


def _deploy(state: EmbeddedState) -> StackResources:
    settings = state.settings
    bucket = provision.code_bucket_name(settings)
    key = provision.upload_forwarder(settings, bucket)
    resources = provision.create_stack(settings, ENVIRONMENT_NAME, bucket, key)
    provision.seed_config(settings, resources)
    return resources


def _start_ministack(state: EmbeddedState) -> int:
    home = Path(state.home)
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    env = service_environment(state)
    env.update(
        {
            "BIND_HOST": HOST,
            "GATEWAY_PORT": str(state.port),
            # MiniStack writes its pid file and Lambda code here.
            "TMPDIR": str(tmp),
            "LOG_LEVEL": os.environ.get("MINISTACK_LOG_LEVEL", "WARNING"),
        }
    )
    env.pop("AWS_ENDPOINT_URL", None)
    # The forwarder Lambda runs in MiniStack's worker processes and needs no
    # purchase-token secret.
    for name in ("BOXOFFICE_TOKEN_SECRET", "BOXOFFICE_TOKEN_SECRET_FILE"):
        env.pop(name, None)
    log = open(home / "ministack.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [PYTHON, "-m", "ministack"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    _wait_for_http(f"{state.endpoint_url}/_ministack/health", process.pid)
    return process.pid


def _start_service(state: EmbeddedState, name: str) -> int:
    home = Path(state.home)
    env = service_environment(state)
    if name == "processor":
        command = [
            PYTHON,
            "-m",
            "system.windows",
            "--metrics-port",
            str(state.processor_metrics_port),
        ]
    else:
        command = [
            PYTHON,
            "-m",
            "system.ticketing",
            "--port",
            str(state.ticketing_port),
            "--metrics-port",
            str(state.ticketing_metrics_port),
        ]
    log = open(home / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    return process.pid


def _wait_for_http(url: str, pid: int, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise EmbeddedStackError(
                f"Process {pid} exited before {url} responded. See the logs in the "
                "state folder (ministack.log, processor.log, ticketing.log)."
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise EmbeddedStackError(
        f"{url} did not respond within {timeout:.0f} s. See the logs in the "
        "state folder."
    )


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(pid: int) -> None:
    # Each service leads its own process group, so the group signal also
    # reaches MiniStack's Lambda worker processes.
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    logger.warning(
        "Process %d did not stop within %d s and was killed", pid, STOP_TIMEOUT_SECONDS
    )


def resources(state: EmbeddedState) -> StackResources:
    """Return the embedded stack's resources from its CloudFormation outputs."""
    return describe_stack(state.settings)
