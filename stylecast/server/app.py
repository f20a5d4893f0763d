"""The FastAPI application: REST under /v1 (OpenAPI at /v1/openapi.json, docs at /v1/docs),
the `/v1/stream` WebSocket, WebRTC (when aiortc is installed) and the web page.

    app = create_app(ServerConfig(port=8080))
    uvicorn.run(app, host=..., port=..., ws_per_message_deflate=False)   # see cli/serve.py
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from stylecast import __version__
from stylecast.engine.errors import FormatError, InputError, NoFaceError, StylecastError
from stylecast.server import protocol as p
from stylecast.server.config import ServerConfig
from stylecast.server.library import IMAGE_TYPES, ConflictError
from stylecast.server.state import ServerState
from stylecast.server.stream import StreamConnection
from stylecast.server.styles import MOTION_TYPES, VIDEO_TYPES

log = logging.getLogger(__name__)

WEB_DIR = Path(str(resources.files("stylecast.clients") / "web"))


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _binary_body(*types: str) -> dict:
    schema = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "content": {t: {"schema": schema} for t in types}}}


def server(request: Request) -> ServerState:
    return request.app.state.server


def access(request: Request, token: str | None = Query(None, include_in_schema=False)):
    s = server(request)
    if not s.token_ok(request.headers.get("authorization"), token):
        raise ApiError(401, "unauthorized", "a bearer token is needed (--token)")
    if request.method != "GET" and not s.origin_ok(
        request.headers.get("origin"), request.headers.get("host")
    ):
        raise ApiError(403, "origin", f"Origin {request.headers.get('origin')} not allowed")
    return s


Access = Annotated[ServerState, Depends(access)]


def create_app(config: ServerConfig | None = None) -> FastAPI:
    config = config or ServerConfig()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = ServerState(config)
        app.state.server = state
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(state.io, state.library.avatar, "default")  # warm the cache
        await loop.run_in_executor(state.builder, state.styles.encode_stored)
        log.info(
            "stylecast server ready: motion %s (%s), styles %s",
            config.motion,
            state.scheduler.model.name,
            sorted(state.styles.presets),
        )
        try:
            yield
        finally:
            if hasattr(app.state, "webrtc"):
                await app.state.webrtc.aclose()
            state.close()

    app = FastAPI(
        title="stylecast",
        version=__version__,
        description="Stylized talking-head avatars, live. docs/server.md, docs/protocol.md.",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    if config.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.allow_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": {"code": e.code, "message": e.message}}, e.status)

    # ------------------------------------------------------------------ REST

    @app.get("/v1/health", tags=["server"])
    async def health(request: Request) -> dict:
        s = server(request)
        return {
            "status": "ok",
            "version": __version__,
            "protocol": p.PROTOCOL_VERSION,
            "sessions": s.live,
            "max_sessions": s.config.max_sessions,
            "model": s.scheduler.model.name,
            "motion": motion_info(s),
            "webrtc": getattr(request.app.state, "webrtc_enabled", False),
        }

    @app.get("/v1/metrics", tags=["server"], response_class=PlainTextResponse)
    async def metrics(s: Access) -> PlainTextResponse:
        return PlainTextResponse(s.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/avatars", tags=["avatars"])
    async def list_avatars(s: Access) -> dict:
        return {"avatars": s.library.avatars()}

    @app.get("/v1/avatars/{name}/preview.jpg", tags=["avatars"], response_class=Response)
    async def avatar_preview(name: str, s: Access) -> Response:
        loop = asyncio.get_running_loop()
        try:
            jpeg = await loop.run_in_executor(s.io, s.library.preview, name)
        except InputError as e:
            raise ApiError(404, "not_found", str(e)) from e
        return Response(jpeg, media_type="image/jpeg")

    @app.post(
        "/v1/avatars",
        tags=["avatars"],
        status_code=201,
        openapi_extra=_binary_body(*IMAGE_TYPES),
        summary="Build an avatar from a portrait (the request body is the image file)",
    )
    async def upload_avatar(
        request: Request, s: Access, name: str = Query(..., max_length=40)
    ) -> dict:
        ctype = _content_type(request)
        if ctype not in IMAGE_TYPES:
            s.metrics.uploads.inc(kind="avatar", result="refused")
            raise ApiError(415, "unsupported_type", f"Content-Type {ctype!r}; send {IMAGE_TYPES}")
        data = await _read_body(request, s.config.max_image_bytes, s, "avatar")
        return await _build(s, "avatar", s.library.add_avatar, name, data)

    @app.get("/v1/styles", tags=["styles"])
    async def list_styles(s: Access) -> dict:
        loop = asyncio.get_running_loop()
        styles = await loop.run_in_executor(s.io, s.styles.list)
        model = s.scheduler.model
        return {"model": model.name, "style_encoder": model.has_style_encoder, "styles": styles}

    @app.post(
        "/v1/styles",
        tags=["styles"],
        status_code=201,
        openapi_extra=_binary_body(*VIDEO_TYPES, *MOTION_TYPES),
        summary="Keep a style clip (a video of a face speaking, or a motion file) and encode "
        "it with the running motion model's style encoder",
    )
    async def upload_style(
        request: Request,
        s: Access,
        name: str = Query(..., max_length=40),
        rig: str = Query("default", max_length=40, description="avatar whose rig fits a video"),
    ) -> dict:
        ctype = _content_type(request)
        if ctype not in VIDEO_TYPES and ctype not in MOTION_TYPES:
            s.metrics.uploads.inc(kind="style", result="refused")
            raise ApiError(
                415,
                "unsupported_type",
                f"Content-Type {ctype!r}; send a video ({sorted(VIDEO_TYPES)}) or a motion "
                f"file ({sorted(MOTION_TYPES)})",
            )
        data = await _read_body(request, s.config.max_style_bytes, s, "style")
        return await _build(s, "style", lambda n, d: s.styles.add(n, d, ctype, rig), name, data)

    # ------------------------------------------------------------------ WebSocket

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket, token: str | None = None) -> None:
        s: ServerState = ws.app.state.server
        if not s.origin_ok(ws.headers.get("origin"), ws.headers.get("host")):
            await ws.close(p.CLOSE_POLICY, "Origin not allowed (--allow-origin)")
            return
        if not s.token_ok(ws.headers.get("authorization"), token):
            await ws.close(p.CLOSE_POLICY, "a bearer token is needed (--token)")
            return
        await ws.accept()
        refusal = s.acquire_slot("websocket")
        if refusal is not None:
            await ws.send_text(p.error_event(p.CAPACITY, refusal, fatal=True))
            await ws.close(p.CLOSE_TRY_LATER, "server full (max sessions)")
            return
        try:
            await StreamConnection(ws, s).run()
        finally:
            s.release_slot()

    try:
        from stylecast.server.webrtc import add_webrtc_routes
    except ImportError:  # the [webrtc] extra is not installed
        log.info("aiortc is not installed: no WebRTC (pip install 'stylecast[webrtc]')")
    else:
        add_webrtc_routes(app)

    # ------------------------------------------------------------------ web page

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")

    @app.get("/obs", include_in_schema=False)
    async def obs() -> FileResponse:
        return FileResponse(WEB_DIR / "obs.html")

    app.mount("/web", StaticFiles(directory=WEB_DIR), name="web")
    return app


def motion_info(s: ServerState) -> dict:
    """The motion model in use, for /v1/health."""
    model = s.scheduler.model
    return {
        "spec": s.config.motion,
        "name": model.name,
        "style_dim": model.style_dim,
        "lookahead_frames": model.lookahead,
        "style_encoder": model.has_style_encoder,
        "weights": model.weights_id or None,
    }


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(request: Request, limit: int, s: ServerState, kind: str) -> bytes:
    """The request body, refused with 413 as soon as it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    too_big = ApiError(413, "too_large", f"the {kind} upload exceeds {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        s.metrics.uploads.inc(kind=kind, result="too_large")
        raise too_big
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            s.metrics.uploads.inc(kind=kind, result="too_large")
            raise too_big
    return bytes(buf)


async def _build(s: ServerState, kind: str, fn, name: str, data: bytes) -> dict:
    """Run an upload's build (MediaPipe, fitting) on the builder thread; map its errors."""
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(s.builder, fn, name, data)
    except ConflictError as e:
        s.metrics.uploads.inc(kind=kind, result="conflict")
        raise ApiError(409, "conflict", str(e)) from e
    except NoFaceError as e:
        s.metrics.uploads.inc(kind=kind, result="no_face")
        raise ApiError(422, "no_face", str(e)) from e
    except FormatError as e:
        s.metrics.uploads.inc(kind=kind, result="bad_file")
        raise ApiError(422, "bad_file", str(e)) from e
    except InputError as e:
        s.metrics.uploads.inc(kind=kind, result="invalid")
        raise ApiError(400, "invalid", str(e)) from e
    except StylecastError as e:
        s.metrics.uploads.inc(kind=kind, result="failed")
        raise ApiError(500, "failed", str(e)) from e
    s.metrics.uploads.inc(kind=kind, result="ok")
    return result
