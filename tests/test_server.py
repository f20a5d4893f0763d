"""The server's REST API on a real uvicorn server (loopback): health, OpenAPI, metrics,
avatars and styles, upload validation, token and Origin checks."""

import asyncio
import json
from urllib.parse import quote

import cv2
import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stylecast.clients.stream_client import StreamClient, StreamError
from stylecast.engine.avatar import load_avatar
from stylecast.engine.baseline import BaselineMotion
from stylecast.engine.motion import save_motion, scripted_motion
from stylecast.server.config import ServerConfig
from stylecast.server.runner import ServerThread

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    config = ServerConfig(
        port=0, data_dir=tmp_path_factory.mktemp("data"), max_image_bytes=2_000_000
    )
    with ServerThread(config) as s:
        yield s


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    config = ServerConfig(
        port=0,
        data_dir=tmp_path_factory.mktemp("data"),
        token=TOKEN,
        allow_origins=("https://allowed.example",),
    )
    with ServerThread(config) as s:
        yield s


def png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def test_health_and_openapi(server):
    r = httpx.get(server.url + "/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["protocol"] == 1 and body["max_sessions"] == 4
    assert body["motion"]["spec"] == "baseline" and body["motion"]["name"] == body["model"]
    assert body["motion"]["style_encoder"] is True  # a projection onto its presets
    spec = httpx.get(server.url + "/v1/openapi.json").json()
    for path in ("/v1/avatars", "/v1/styles", "/v1/health", "/v1/metrics"):
        assert path in spec["paths"], path
    body = spec["paths"]["/v1/avatars"]["post"]["requestBody"]["content"]
    assert "image/jpeg" in body and "image/png" in body


def test_lists_builtin_avatar_and_engine_styles(server):
    avatars = httpx.get(server.url + "/v1/avatars").json()["avatars"]
    assert {"name": "default", "source": "builtin"}.items() <= avatars[0].items()
    r = httpx.get(server.url + avatars[0]["preview"])
    assert r.headers["content-type"] == "image/jpeg"
    img = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (512, 512, 3)
    styles = httpx.get(server.url + "/v1/styles").json()
    names = [s["name"] for s in styles["styles"] if s["source"] == "preset"]
    assert set(names) >= {"neutral", "happy", "sad"}  # what the engine's model offers
    assert httpx.get(server.url + "/v1/avatars/nobody/preview.jpg").status_code == 404


def test_metrics_are_prometheus_text(server):
    r = httpx.get(server.url + "/v1/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "stylecast_sessions",
        "stylecast_frames_sent_total",
        "stylecast_frames_dropped_total",
        "stylecast_frame_latency_seconds",
    ):
        assert f"# TYPE {name} " in text, name
    assert 'stylecast_frame_latency_seconds_bucket{le="+Inf"}' in text


@pytest.mark.parametrize(
    ("body", "ctype", "status", "code"),
    [
        (b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10, "image/jpeg", 422, "bad_file"),
        (b"", "image/png", 422, "bad_file"),
        (b"GIF89a....", "image/gif", 415, "unsupported_type"),
        (b"hello", "text/plain", 415, "unsupported_type"),
        (bytes(2_000_001), "image/png", 413, "too_large"),
    ],
)
def test_avatar_upload_refusals(server, body, ctype, status, code):
    r = httpx.post(
        server.url + "/v1/avatars",
        params={"name": "x1"},
        content=body,
        headers={"content-type": ctype},
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_avatar_upload_without_a_face(server):
    gray = np.full((300, 300, 3), 128, np.uint8)
    r = httpx.post(
        server.url + "/v1/avatars",
        params={"name": "blank"},
        content=png(gray),
        headers={"content-type": "image/png"},
        timeout=60,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face", r.text


def test_avatar_upload_builds_and_lists(server):
    portrait = load_avatar("default").image
    post = dict(content=png(portrait), headers={"content-type": "image/png"}, timeout=120)
    r = httpx.post(server.url + "/v1/avatars", params={"name": "me"}, **post)
    assert r.status_code == 201, r.text
    names = {
        a["name"]: a["source"] for a in httpx.get(server.url + "/v1/avatars").json()["avatars"]
    }
    assert names["me"] == "uploaded" and names["default"] == "builtin"
    assert (server.config.data_dir / "avatars" / "me.avatar").is_file()
    again = httpx.post(server.url + "/v1/avatars", params={"name": "me"}, **post)
    assert again.status_code == 409
    bad = httpx.post(server.url + "/v1/avatars", params={"name": "../etc"}, **post)
    assert bad.status_code == 400 and "name" in bad.json()["error"]["message"]


def test_style_upload_keeps_the_motion_clip(server, tmp_path):
    clip = tmp_path / "clip.npz"
    save_motion(clip, scripted_motion(2.0))
    r = httpx.post(
        server.url + "/v1/styles",
        params={"name": "wavy"},
        content=clip.read_bytes(),
        headers={"content-type": "application/x-npz"},
    )
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "wavy", "source": "motion", "frames": 60, "seconds": 2.0,
                        "usable": True}  # fmt: skip
    meta = json.loads((server.config.data_dir / "styles" / "wavy.json").read_text())
    assert meta["clip"] == "wavy.npz" and meta["models"] == {"baseline": ""}
    with np.load(server.config.data_dir / "styles" / "wavy.npz", allow_pickle=False) as z:
        assert z["expr"].shape == (60, 52)
        want = BaselineMotion().extract_style(z["expr"], z["pose"])  # presets it is nearest
    assert np.allclose(meta["codes"]["baseline"], want, atol=1e-5)
    listed = {s["name"]: s for s in httpx.get(server.url + "/v1/styles").json()["styles"]}
    assert listed["wavy"]["usable"] is True and listed["happy"]["usable"] is True


def test_style_upload_from_a_video_is_fitted(server, tmp_path):
    """A video of a face (the default avatar rendered with the scripted motion) -> MediaPipe
    landmarks -> the fitter -> a stored 30 FPS clip."""
    from stylecast.engine.render import Renderer
    from stylecast.engine.video import VideoWriter

    motion = scripted_motion(1.5)
    clip = tmp_path / "face.mp4"
    with Renderer(load_avatar("default"), 256) as renderer:
        writer = VideoWriter(clip, 256, 256)
        for expr, pose in zip(motion.expr, motion.pose, strict=True):
            writer.write(renderer.render(expr, pose))
        writer.close()
    r = httpx.post(
        server.url + "/v1/styles",
        params={"name": "fitted"},
        content=clip.read_bytes(),
        headers={"content-type": "video/mp4"},
        timeout=120,
    )
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "video" and r.json()["frames"] == 45
    with np.load(server.config.data_dir / "styles" / "fitted.npz", allow_pickle=False) as z:
        jaw = z["expr"][:, list(z["names"]).index("jawOpen")]
    want = motion.channel("jawOpen")
    assert np.corrcoef(jaw, want)[0, 1] > 0.8  # the fitter recovers the jaw's motion


def test_a_stored_style_with_a_code_for_the_model_is_usable(server):
    """A stored style whose `codes` has an entry for the running model (of its length)
    is usable; others (a bare `code`, another model's codes) stay listed, unusable."""
    folder = server.config.data_dir / "styles"
    meta = {"name": "grin", "source": "motion", "frames": 30, "seconds": 1.0, "clip": None}
    (folder / "grin.json").write_text(json.dumps(meta | {"codes": {"baseline": [0, 1, 0, 0, 0]}}))
    (folder / "other.json").write_text(json.dumps(meta | {"name": "other", "code": [0.5] * 256}))
    listed = {s["name"]: s for s in httpx.get(server.url + "/v1/styles").json()["styles"]}
    assert listed["grin"]["usable"] is True and listed["other"]["usable"] is False

    async def start(style):
        async with StreamClient(server.ws_url) as client:
            return await client.start(style=style, outputs=("motion",))

    assert asyncio.run(start({"grin": 0.5, "sad": 0.5}))["type"] == "ready"
    with pytest.raises(StreamError, match="no style code"):
        asyncio.run(start("other"))


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"PK\x03\x04 broken zip", "application/x-npz", 422),
        (b"not,a,live,link,csv\n1,2", "text/csv", 422),
        (b"\x00\x00\x00\x18ftypmp42 truncated", "video/mp4", 422),
        (b"x", "application/pdf", 415),
    ],
)
def test_style_upload_refusals(server, body, ctype, status):
    r = httpx.post(
        server.url + "/v1/styles",
        params={"name": "bad"},
        content=body,
        headers={"content-type": ctype},
    )
    assert r.status_code == status, r.text


def test_token_is_required(locked):
    assert httpx.get(locked.url + "/v1/health").status_code == 200  # health stays open
    assert httpx.get(locked.url + "/v1/avatars").status_code == 401
    ok = httpx.get(locked.url + "/v1/avatars", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert httpx.get(locked.url + "/v1/styles", params={"token": TOKEN}).status_code == 200
    wrong = httpx.get(locked.url + "/v1/styles", headers={"Authorization": "Bearer nope-nope"})
    assert wrong.status_code == 401


def test_foreign_origin_cannot_upload(locked):
    auth = {"Authorization": f"Bearer {TOKEN}", "content-type": "image/png"}
    r = httpx.post(
        locked.url + "/v1/avatars",
        params={"name": "zz"},
        content=b"x",
        headers=auth | {"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    r = httpx.post(
        locked.url + "/v1/avatars",
        params={"name": "zz"},
        content=b"x",
        headers=auth | {"Origin": "https://allowed.example"},
    )
    assert r.status_code == 422  # past the Origin check: the body is not an image


ops = st.sampled_from(["avatars_post", "styles_post", "preview", "offer", "delete", "lists"])
junk = st.text(max_size=50)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=ops,
    name=junk,
    body=st.binary(max_size=2000),
    ctype=st.sampled_from(
        [
            "image/png",
            "image/jpeg",
            "video/mp4",
            "text/csv",
            "application/x-npz",
            "application/json",
            "x/y",
            "",
        ]
    ),
    obj=st.dictionaries(
        st.sampled_from(["sdp", "type", "avatar", "style", "size", "watch", "x"]),
        st.one_of(junk, st.integers(), st.none(), st.dictionaries(junk, st.floats(), max_size=2)),
        max_size=6,
    ),
)
def test_fuzzed_rest_calls_never_fail_on_the_server(server, op, name, body, ctype, obj):
    """Random names, bodies and JSON against every operation of the OpenAPI description:
    the server answers with a 2xx or a 4xx naming the problem, never a 5xx."""
    url = server.url
    spec_paths = FUZZ_SPEC.setdefault("paths", httpx.get(url + "/v1/openapi.json").json()["paths"])
    assert {"/v1/avatars", "/v1/styles", "/v1/webrtc/offer"} <= set(spec_paths)
    if op in ("avatars_post", "styles_post"):
        path = "/v1/avatars" if op == "avatars_post" else "/v1/styles"
        r = httpx.post(
            url + path,
            params={"name": name},
            content=body,
            headers={"content-type": ctype},
            timeout=60,
        )
    elif op == "preview":
        r = httpx.get(url + f"/v1/avatars/{quote(name, safe='')}/preview.jpg")
    elif op == "offer":
        r = httpx.post(url + "/v1/webrtc/offer", json=obj, timeout=30)
    elif op == "delete":
        r = httpx.delete(url + f"/v1/webrtc/{quote(name, safe='')}")
    else:
        r = httpx.get(url + "/v1/styles")
    assert r.status_code < 500, (op, r.status_code, r.text)
    if r.status_code >= 400:
        assert r.json()  # a JSON body that says what was wrong


FUZZ_SPEC: dict = {}
