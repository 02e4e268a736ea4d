"""The stack's processes for the benches that run the real topology: free ports, the
Procfile's commands moved to a throw-away folder, a child process in its own group, and the
resident memory of a process with everything it started."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def procfile_commands(folder: Path, ports: dict[str, int]) -> dict[str, list[str]]:
    """The Procfile's command lines as they are, but on free ports (`ports` by process name;
    the web's is $WEB_PORT) and with their data folders (--dir, --data-dir) inside `folder`."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        name = name.strip()
        if not command.strip() or name.startswith("#"):
            continue
        argv = shlex.split(command.replace("$WEB_PORT", str(ports.get("web", ""))))
        for i, arg in enumerate(argv[:-1]):
            if arg == "--port":
                argv[i + 1] = str(ports[name])
            elif arg in ("--dir", "--data-dir"):
                data = folder / Path(argv[i + 1]).name
                data.mkdir(parents=True, exist_ok=True)
                argv[i + 1] = str(data)
        commands[name] = argv
    return commands


class Process:
    """A child process of the stack, in its own process group (so a kill reaches its forks)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.name, self.command, self.port, self.env = name, command, port, env
        self.log = open(log_dir / f"{name}.log", "ab")
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        if self.port:
            wait_for_port(self.port)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait()

    def stop_gracefully(self, timeout: float = 120) -> None:
        """SIGTERM to the main process only, as systemd's KillMode=mixed sends it: Dramatiq's
        main process passes it on once, and each worker process finishes the messages it is
        running. (SIGTERM to the whole process group reaches each worker twice, once directly
        and once from the main process, and the second makes it exit at once.)"""
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tree_rss(self) -> int:
        """Bytes resident in this process and every process it started, now (0 once it ended)."""
        if self.popen is None or self.popen.poll() is not None:
            return 0
        return tree_rss(self.popen.pid)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (psutil, else /proc)."""
    try:
        import psutil
    except ImportError:
        return _proc_tree_rss(pid)
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass  # ended between the listing and the reading
    return total


def _proc_tree_rss(pid: int) -> int:
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        children = [
            int(child)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for child in (task / "children").read_text().split()
        ]
    except OSError:
        return total
    return total + sum(_proc_tree_rss(child) for child in children)
