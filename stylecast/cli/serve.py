"""`stylecast serve`: the server (REST, WebSocket stream, WebRTC, web page); docs/server.md."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


# numpy's and scipy's OpenBLAS each start a worker thread per core that spins after every
# small matrix product: measured, one live session made such a thread burn ~84% of a core
# (the whole server needs ~12% of a core per 256 px stream without it). The count can only
# be set before the libraries load, so `serve` re-executes itself once with it set.
def register(subparsers: argparse._SubParsersAction) -> None:
    from stylecast.server.config import ServerConfig, default_data_dir

    d = ServerConfig.__dataclass_fields__
    parser = subparsers.add_parser(
        "serve",
        help="run the server: web page, WebSocket and WebRTC streams, REST API",
        description="Serve avatars live: open http://HOST:PORT/ in a browser to talk to an "
        "avatar, /obs for an OBS Browser Source, /v1/docs for the REST API; stream over "
        "the WebSocket /v1/stream (docs/protocol.md) or WebRTC (POST /v1/webrtc/offer).",
        epilog="example: stylecast serve --port 8080 --max-sessions 2",
    )
    parser.add_argument(
        "--host", default=d["host"].default, help="bind address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=d["port"].default, help="TCP port (default: %(default)s)"
    )
    parser.add_argument(
        "--max-sessions",
        type=int,
        default=d["max_sessions"].default,
        metavar="N",
        help="live streams at once; more are refused (default: %(default)s). The engine also "
        "refuses sessions it cannot serve at 30 FPS on this machine.",
    )
    parser.add_argument(
        "--token",
        metavar="T",
        help="require 'Authorization: Bearer T' (or ?token=T) on every /v1 call but health",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a browser Origin allowed besides the server's own, e.g. https://example.org "
        "(repeatable; '*' allows any)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"where uploaded avatars and styles are kept (default: {default_data_dir()})",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=d["idle_timeout_s"].default,
        metavar="SECONDS",
        help="close streams that send nothing for this long (default: %(default)s)",
    )
    add_motion_argument(parser)
    parser.add_argument(
        "--rt-priority",
        type=int,
        default=None,
        metavar="N",
        help="run the engine's threads under the real-time scheduler (SCHED_RR priority N, "
        "1-98; the server's event loop one above): on a machine busy with other work this is "
        "what keeps 30 FPS (docs/engine.md, 'Stalls'). Needs root or CAP_SYS_NICE; without, "
        "a warning is printed and the server runs normally. Default: $STYLECAST_RT_PRIORITY "
        "or off",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        default=[],
        metavar="URL",
        help="STUN/TURN server for WebRTC, e.g. stun:stun.example.org:3478 (repeatable; "
        "default: none, so nothing outside is contacted)",
    )
    parser.set_defaults(func=run)


def add_motion_argument(parser: argparse.ArgumentParser) -> None:
    """--motion SPEC, shared by the commands that run sessions."""
    parser.add_argument(
        "--motion",
        dest="motion_spec",
        default="baseline",
        metavar="SPEC",
        help="motion model: 'baseline' (rule-based visemes, the default), 'onnx-cpu' (the "
        "shipped SAAS export), 'onnx-cpu:FOLDER' (an exported model, e.g. "
        "assets/onnx/styletalk), or onnx-cuda/onnx-tensorrt/tensorrt[:FOLDER] on a GPU",
    )


def rt_priority_option(value: int | None) -> int | None:
    """--rt-priority N: checked (InputError), then made the process's setting as
    STYLECAST_RT_PRIORITY is (what the engine's default scheduler reads); None leaves the
    environment's. Returns the priority in effect."""
    import os

    from stylecast.engine.errors import InputError
    from stylecast.engine.scheduler import RT_PRIORITY_ENV, rt_priority_from_env

    if value is not None:
        if not 1 <= value <= 98:
            raise InputError(f"--rt-priority {value}: use a real-time priority 1-98")
        os.environ[RT_PRIORITY_ENV] = str(value)
    return rt_priority_from_env()


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stylecast.engine.scheduler import consumer_priority, use_rt_priority
    from stylecast.engine.session import default_scheduler
    from stylecast.server.app import create_app
    from stylecast.server.config import ServerConfig
    from stylecast.server.runner import uvicorn_options

    extra = {"data_dir": args.data_dir} if args.data_dir else {}
    config = ServerConfig(
        host=args.host,
        port=args.port,
        max_sessions=args.max_sessions,
        token=args.token,
        allow_origins=tuple(args.allow_origin),
        idle_timeout_s=args.idle_timeout,
        ice_servers=tuple(args.ice_server),
        motion=args.motion_spec,
        **extra,
    )
    rt = rt_priority_option(args.rt_priority)  # a bad value fails here, before serving
    model = default_scheduler(config.motion).model  # a bad spec fails here, before serving
    print(f"stylecast: motion model {model.name} ({config.motion})", flush=True)
    print(f"stylecast: open http://{args.host}:{args.port}/ (API docs: /v1/docs)", flush=True)
    # --rt-priority / STYLECAST_RT_PRIORITY (docs/engine.md, "Stalls"): the engine's threads
    # run SCHED_RR at that priority and this thread, uvicorn's event loop that reads their
    # frames, one above.
    if use_rt_priority(consumer_priority(rt)):
        print(f"stylecast: real-time threads (SCHED_RR {rt})", flush=True)
    elif rt is not None:
        print(
            f"stylecast: warning: real-time priority {rt} not permitted (needs root or "
            "CAP_SYS_NICE); running with the ordinary scheduler, which may not hold 30 FPS "
            "on a busy machine",
            file=sys.stderr,
            flush=True,
        )
    uvicorn.run(create_app(config), **uvicorn_options(config))
    return 0
