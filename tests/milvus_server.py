"""A `milvus-lite server` process on a free port, for tests that stop, wipe and restart Milvus
the way an operator (or a lost disk) would. The in-process Milvus Lite of the `milvus` fixture
cannot be stopped under the app's feet; this one can."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, wait_for_port

BIN = Path(sys.executable).parent


class MilvusLiteServer:
    """One server, its data in `data_dir`; `start()` again after `stop()` reuses the port, so
    the app's client (and its URI) stays the same across a restart."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir, self.port = Path(data_dir), port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MilvusLiteServer:
        self.process = subprocess.Popen(
            [
                str(BIN / "milvus-lite"),
                "server",
                *("--data-dir", str(self.data_dir)),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=60)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def wipe(self) -> None:
        """Lose every collection: the data directory goes, as with a disk that was not kept."""
        shutil.rmtree(self.data_dir, ignore_errors=True)
