"""WebRTC on loopback: a real aiortc peer sends speech as its microphone (a WAV file made by
espeak-ng) and receives the avatar's video and audio; the data channel carries control
messages and events."""

import asyncio
import json
import shutil
import subprocess

import httpx
import pytest

from stylecast.server.config import ServerConfig
from stylecast.server.runner import ServerThread

aiortc = pytest.importorskip("aiortc", reason="the [webrtc] extra (aiortc) is not installed")
from aiortc.contrib.media import MediaPlayer  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(ServerConfig(port=0, data_dir=tmp_path_factory.mktemp("d"))) as s:
        yield s


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "One two three, can you hear me?"], check=True)
    return wav


async def connect_peer(server, body: dict, mic=None):
    """An aiortc peer: the offer (with `mic` as its audio track, else receive-only audio)
    posted with `body`; returns (pc, tracks by kind, data channel, events, answer)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if mic is not None:
        pc.addTrack(mic)
    else:
        pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("control")
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    tracks: dict[str, asyncio.Future] = {"video": asyncio.Future(), "audio": asyncio.Future()}
    pc.on("track", lambda t: tracks[t.kind].set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient() as http:
        r = await http.post(
            server.url + "/v1/webrtc/offer",
            json={"sdp": pc.localDescription.sdp, "type": "offer"} | body,
            timeout=30,
        )
    assert r.status_code == 200, r.text
    answer = r.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    return pc, tracks, channel, events, answer


async def test_aiortc_peer_talks_and_sees_the_avatar(server, speech_wav):
    mic = MediaPlayer(str(speech_wav))
    pc, tracks, channel, events, answer = await connect_peer(
        server, {"style": "happy", "size": 128}, mic.audio
    )
    assert "127.0.0.1" in answer["sdp"]  # the loopback candidate is offered
    try:
        async with asyncio.timeout(20):
            video = await tracks["video"]
            audio = await tracks["audio"]
            frames = [await video.recv() for _ in range(45)]
            sound = [await audio.recv() for _ in range(20)]
            assert {(f.width, f.height) for f in frames} == {(128, 128)}
            pts = [f.pts for f in frames]
            assert pts == sorted(pts) and len(set(pts)) == len(pts)
            assert all(s.sample_rate == 48_000 for s in sound)
            channel.send(json.dumps({"type": "set_style", "style": {"sad": 1}}))
            channel.send(json.dumps({"type": "ping", "id": 3}))
            channel.send(json.dumps({"type": "start"}))  # not a data-channel message
            # the WAV's speech goes through the gate into the session: segment_started
            want = {"pong", "error", "segment_started"}
            while not want <= {e["type"] for e in events}:
                await video.recv()
        assert next(e for e in events if e["type"] == "pong")["id"] == 3
        listed = httpx.get(server.url + "/v1/webrtc/sessions").json()["sessions"]
        assert len(listed) == 1
        assert httpx.get(server.url + "/v1/health").json()["sessions"] == 1
    finally:
        await pc.close()
        mic.audio.stop()
    for _ in range(100):  # the server notices the closed peer and frees its slot
        if httpx.get(server.url + "/v1/health").json()["sessions"] == 0:
            break
        await asyncio.sleep(0.1)
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 0


def test_bad_offers_are_refused(server):
    r = httpx.post(server.url + "/v1/webrtc/offer", json={"sdp": "v=0 garbage", "type": "offer"})
    assert r.status_code == 400, r.text
    r = httpx.post(server.url + "/v1/webrtc/offer", json={"sdp": "x", "type": "answer"})
    assert r.status_code == 422
    r = httpx.post(server.url + "/v1/webrtc/offer", json={"sdp": "x", "watch": "nobody"})
    assert r.status_code == 400 and "nobody" in r.text
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 0


async def test_a_viewer_watches_a_session(server):
    """The OBS view: a receive-only peer gets the frames of another peer's session."""
    pc, _, *_, answer = await connect_peer(server, {"size": 128})
    viewer = None
    try:
        viewer, vtracks, *_ = await connect_peer(server, {"watch": answer["id"]})
        async with asyncio.timeout(20):
            video = await vtracks["video"]
            frames = [await video.recv() for _ in range(20)]
            audio = await vtracks["audio"]
            await audio.recv()
        assert {(f.width, f.height) for f in frames} == {(128, 128)}
        listed = httpx.get(server.url + "/v1/webrtc/sessions").json()["sessions"]
        assert listed == [{"id": answer["id"], "watchers": 1}]
        assert httpx.get(server.url + "/v1/health").json()["sessions"] == 2
        r = httpx.delete(server.url + f"/v1/webrtc/{answer['id']}")
        assert r.status_code == 204
        assert httpx.delete(server.url + f"/v1/webrtc/{answer['id']}").status_code == 404
    finally:
        await pc.close()
        if viewer is not None:
            await viewer.close()
    for _ in range(100):
        if httpx.get(server.url + "/v1/health").json()["sessions"] == 0:
            break
        await asyncio.sleep(0.1)
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 0


async def test_peer_and_manager_close_are_idempotent(tmp_path):
    from aiortc import RTCPeerConnection

    from stylecast.server.state import ServerState
    from stylecast.server.webrtc import Peer, WebRtcManager

    state = ServerState(ServerConfig(data_dir=tmp_path))
    manager = WebRtcManager(state)
    await manager.aclose()  # nothing started: a no-op
    assert state.acquire_slot("webrtc") is None
    peer = Peer(manager, RTCPeerConnection(), "p1")
    manager.peers[peer.id] = peer
    await peer.aclose()
    await peer.aclose()
    await manager.aclose()
    assert state.live == 0 and manager.peers == {}
    assert peer.video.readyState == "ended"
    state.close()


async def test_a_peer_that_never_connects_is_dropped(server, monkeypatch):
    from aiortc import RTCConfiguration, RTCPeerConnection

    from stylecast.server import webrtc

    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 1.0)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient() as http:  # the answer is never applied: no connection
        r = await http.post(
            server.url + "/v1/webrtc/offer",
            json={"sdp": pc.localDescription.sdp, "type": "offer", "size": 128},
        )
    assert r.status_code == 200
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 1
    await pc.close()
    for _ in range(50):
        if httpx.get(server.url + "/v1/health").json()["sessions"] == 0:
            break
        await asyncio.sleep(0.1)
    assert httpx.get(server.url + "/v1/health").json()["sessions"] == 0
