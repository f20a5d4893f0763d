"""Running the server: uvicorn's options (compression off for media) and a server on a
background thread, for embedding it in a program, the tests and the benchmark.

    with ServerThread(ServerConfig(port=0)) as server:     # port 0: a free port
        print(server.url)                                   # http://127.0.0.1:PORT

With STYLECAST_RT_PRIORITY set, the server's event loop (which hands the frames out) runs
one SCHED_RR priority above the engine's threads (docs/engine.md, "Stalls").
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from stylecast.engine.errors import BackendError
from stylecast.engine.scheduler import consumer_priority, rt_priority_from_env, use_rt_priority
from stylecast.server.config import ServerConfig

START_TIMEOUT_S = 30.0


def uvicorn_options(config: ServerConfig) -> dict:
    """How uvicorn must run the app: per-message compression off (deflate costs ~18 ms per
    196 KB frame and cannot shrink JPEG or noise-like PCM), message size limited."""
    return {
        "host": config.host,
        "port": config.port,
        "ws_per_message_deflate": False,
        "ws_max_size": config.max_message_bytes,
        "log_level": "info",
        "access_log": False,
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """A real uvicorn server with the stylecast app, on its own thread and event loop."""

    def __init__(self, config: ServerConfig, log_level: str = "warning") -> None:
        from dataclasses import replace

        from stylecast.server.app import create_app

        if config.port == 0:
            config = replace(config, port=free_port(config.host))
        self.config = config
        options = uvicorn_options(config) | {"log_level": log_level}
        self.server = uvicorn.Server(uvicorn.Config(create_app(config), **options))
        self.rt_priority = rt_priority_from_env()  # InputError here for a bad value
        self.thread = threading.Thread(target=self._serve, name="stylecast-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.config.port}/v1/stream"

    def _serve(self) -> None:
        use_rt_priority(consumer_priority(self.rt_priority))
        self.server.run()

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise BackendError(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
