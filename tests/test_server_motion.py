"""A server running a learned motion model (`--motion onnx-cpu`, the shipped export) on a
real uvicorn server: the model shown by /v1/health, presets that are its codes, style
uploads encoded by its style encoder and used by name in a live stream, clips kept without
a code encoded at start-up, and the upload checks."""

import asyncio
import io
import json
import shutil
import subprocess

import httpx
import numpy as np
import pytest

from stylecast.clients.stream_client import Audio, StreamClient, StreamError
from stylecast.engine.backends import load_backend
from stylecast.engine.motion import Motion, load_motion, save_motion, scripted_motion
from stylecast.engine.video import load_audio
from stylecast.paths import assets_dir
from stylecast.server.config import ServerConfig
from stylecast.server.runner import ServerThread

SPEC = "onnx-cpu"  # the shipped default export (assets/onnx/saas)
MAX_BYTES = 200_000  # upload limit of the test server (a 10 s .npz is ~70 KB)
MAX_SECONDS = 10.0


@pytest.fixture(scope="module")
def model():
    if not (assets_dir() / "onnx" / "saas" / "manifest.json").is_file():
        pytest.skip("no shipped export in assets/onnx/saas")
    return load_backend(SPEC)


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    # a clip kept earlier by a server whose model had no style encoder (no codes)
    (data / "styles").mkdir()
    save_motion(data / "styles" / "kept.npz", scripted_motion(2.0))
    record = {"name": "kept", "source": "motion", "frames": 60, "seconds": 2.0,
              "clip": "kept.npz", "code": None, "codes": {}, "models": {}}  # fmt: skip
    (data / "styles" / "kept.json").write_text(json.dumps(record))
    config = ServerConfig(
        port=0,
        data_dir=data,
        motion=SPEC,
        max_style_bytes=MAX_BYTES,
        max_style_seconds=MAX_SECONDS,
    )
    with ServerThread(config) as s:
        yield s


def upload(server, name: str, body: bytes, ctype: str = "application/x-npz") -> httpx.Response:
    return httpx.post(
        server.url + "/v1/styles",
        params={"name": name},
        content=body,
        headers={"content-type": ctype},
        timeout=60,
    )


def npz_bytes(motion: Motion, tmp_path, suffix: str = ".npz") -> bytes:
    path = tmp_path / f"clip{suffix}"
    save_motion(path, motion)
    return path.read_bytes()


def styles(server) -> dict[str, dict]:
    return {s["name"]: s for s in httpx.get(server.url + "/v1/styles").json()["styles"]}


def test_health_shows_the_model_in_use(server, model):
    body = httpx.get(server.url + "/v1/health").json()
    assert body["model"] == model.name and body["model"] != "baseline"
    motion = body["motion"]
    assert motion["spec"] == SPEC and motion["style_encoder"] is True
    assert motion["style_dim"] == model.style_dim and motion["weights"] == model.weights_id
    listed = styles(server)
    for name in model.styles:  # every preset is the model's own code, usable
        assert listed[name] == {"name": name, "source": "preset", "usable": True}


def test_a_kept_clip_is_encoded_at_start_up(server, model):
    assert styles(server)["kept"]["usable"] is True
    record = json.loads((server.config.data_dir / "styles" / "kept.json").read_text())
    clip = load_motion(server.config.data_dir / "styles" / "kept.npz")
    want = model.extract_style(clip.expr, clip.pose)
    assert record["models"] == {model.codes_key: model.weights_id}
    assert np.allclose(record["codes"][model.codes_key], want, atol=1e-5)


def test_uploaded_clip_is_encoded_and_speaks_by_name(server, model, tmp_path):
    motion = scripted_motion(4.0)
    r = upload(server, "nodder", npz_bytes(motion, tmp_path))
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "nodder", "source": "motion", "frames": 120, "seconds": 4.0,
                        "usable": True}  # fmt: skip
    record = json.loads((server.config.data_dir / "styles" / "nodder.json").read_text())
    want = model.extract_style(motion.expr, motion.pose)  # the model's own style encoder
    assert np.allclose(record["codes"][model.codes_key], want, atol=1e-5)
    assert not np.allclose(want, model.style_code("neutral"), atol=1e-3)
    # a Live Link CSV of another clip is a style too, with its own code
    other = scripted_motion(3.0)
    other = Motion(other.expr[::-1].copy(), other.pose * 0.5)
    r = upload(server, "csvstyle", npz_bytes(other, tmp_path, ".csv"), "text/csv")
    assert r.status_code == 201 and r.json()["usable"] is True, r.text
    record2 = json.loads((server.config.data_dir / "styles" / "csvstyle.json").read_text())
    assert not np.allclose(record2["codes"][model.codes_key], want, atol=1e-3)

    async def stream(style):
        async with StreamClient(server.ws_url) as client:
            ready = await client.start(style=style, outputs=("motion",))
            assert ready["model"] == model.name
            return [m async for m in _first(client, "motion", 10)]

    frames = asyncio.run(stream("nodder"))
    assert len(frames) == 10 and all(len(f["expr"]) == 52 for f in frames)
    assert len(asyncio.run(stream({"nodder": 0.5, "csvstyle": 0.3, "happy": 0.2}))) == 10


async def _first(client: StreamClient, kind: str, n: int):
    got = 0
    async with asyncio.timeout(20):
        async for item in client:
            if isinstance(item, dict) and item["type"] == kind:
                yield item
                got += 1
                if got == n:
                    return


def test_a_stream_speaks_with_the_learned_model(server, tmp_path):
    """Speech in over the WebSocket, the learned model's motion and the speech out, frame
    for frame. (How well its lips follow is the model card's business, not the server's.)"""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello there, how are you?"], check=True)
    pcm = np.clip(np.rint(load_audio(wav, 16_000) * 32767), -32768, 32767).astype(np.int16)

    async def run():
        async with StreamClient(server.ws_url) as client:
            await client.start(style="nodder", outputs=("motion", "audio"))
            await client.send_audio(pcm)
            await client.end_segment()
            motion, loud, start = {}, {}, None
            async with asyncio.timeout(30):
                async for item in client:
                    if isinstance(item, Audio):
                        loud[item.index] = np.abs(item.pcm).max()
                    elif item["type"] == "motion":
                        motion[item["frame"]] = (item["expr"], item["pose"])
                    elif item["type"] == "segment_started":
                        start = item["frame"]
                    elif item["type"] == "playback_finished":
                        return motion, loud, start, item["frame"]

    motion, loud, start, end = asyncio.run(run())
    assert end - start >= len(pcm) * 30 // 16_000 - 1  # every frame of the speech came out
    assert sorted(motion) == list(range(end)) and set(loud) >= set(range(end))
    assert max(loud[t] for t in range(start, end)) > 3000  # with its sound
    assert max(loud[t] for t in range(start)) == 0  # and silence before it
    expr = np.array([motion[t][0] for t in range(end)])
    pose = np.array([motion[t][1] for t in range(end)])
    assert ((expr >= 0) & (expr <= 1)).all() and np.isfinite(pose).all()


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda: scripted_motion(0.5), 400, "accepted: 1 to 10 s"),  # too short
        (lambda: scripted_motion(MAX_SECONDS + 2), 400, "accepted: 1 to 10 s"),  # too long
    ],
)
def test_upload_length_is_checked(server, tmp_path, make, status, words):
    r = upload(server, "badlength", npz_bytes(make(), tmp_path))
    assert r.status_code == status and words in r.json()["error"]["message"], r.text
    assert "badlength" not in styles(server)


def test_uploads_never_unpickle_and_refuse_bad_files(server, tmp_path):
    buf = io.BytesIO()
    names = np.array(["jawOpen"], dtype=object)  # an object array needs pickle to load
    np.savez(buf, fps=30, names=names, expr=np.zeros((40, 1)), pose=np.zeros((40, 6)))
    r = upload(server, "pickled", buf.getvalue())
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_file", r.text
    nan = scripted_motion(2.0)
    buf = io.BytesIO()
    expr = nan.expr.copy()
    expr[5, 3] = np.nan
    np.savez(buf, fps=30, names=np.array(load_motion_names()), expr=expr, pose=nan.pose)
    r = upload(server, "nan", buf.getvalue())
    assert r.status_code == 422 and "the motion upload: `expr` or `pose` holds NaN" in r.text
    r = upload(server, "huge", b"\0" * (MAX_BYTES + 1))
    assert r.status_code == 413, r.text
    r = upload(server, "empty", b"")
    assert r.status_code == 400, r.text
    assert not {"pickled", "nan", "huge", "empty"} & set(styles(server))


def test_clips_that_would_unpack_huge_are_refused_before_reading(server, tmp_path):
    buf = io.BytesIO()  # 83 MB of zeros that zip to ~80 KB
    np.savez_compressed(buf, fps=30, names=np.array(load_motion_names()),
                        expr=np.zeros((200_000, 52)), pose=np.zeros((200_000, 6)))  # fmt: skip
    assert len(buf.getvalue()) < MAX_BYTES
    r = upload(server, "bomb", buf.getvalue())
    assert r.status_code == 422 and "unpacks to" in r.text, r.text
    # a Live Link CSV whose two rows are five hours apart (it would resample to 540k frames)
    save_motion(tmp_path / "two.csv", scripted_motion(2 / 30))
    lines = (tmp_path / "two.csv").read_text().splitlines()
    lines[-1] = "05:00:00:00.000" + lines[-1][lines[-1].index(",") :]
    r = upload(server, "hours", "\n".join(lines).encode(), "text/csv")
    assert r.status_code == 400 and "a style clip of 18000 s;" in r.text, r.text


def load_motion_names() -> list[str]:
    from stylecast.engine.face import ARKIT_NAMES

    return list(ARKIT_NAMES)


def test_unknown_and_unusable_styles_are_refused_by_name(server):
    folder = server.config.data_dir / "styles"
    stale = {"name": "stale", "codes": {"saas": [0.0] * 7}, "models": {"saas": "0" * 12}}
    (folder / "stale.json").write_text(json.dumps(stale))
    listed = styles(server)
    assert listed["stale"]["usable"] is False and "not for the running" in listed["stale"]["reason"]

    async def start(style):
        async with StreamClient(server.ws_url) as client:
            return await client.start(style=style, outputs=("motion",))

    with pytest.raises(StreamError, match="no style code for the running"):
        asyncio.run(start("stale"))
    with pytest.raises(StreamError, match="no style named 'nobody'"):
        asyncio.run(start("nobody"))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("magic", "unknown motion backend 'magic'"),
        ("onnx-cpu:/no/such/export", "is not a folder"),
        ("EMPTY", "no manifest.json"),
    ],
)
def test_serve_refuses_a_bad_motion_spec_before_serving(tmp_path, capsys, spec, words):
    from stylecast.cli import EXIT_INPUT, main

    spec = f"onnx-cpu:{tmp_path}" if spec == "EMPTY" else spec
    argv = ["serve", "--port", "0", "--data-dir", str(tmp_path), "--motion", spec]
    assert main(argv) == EXIT_INPUT
    assert words in capsys.readouterr().err
