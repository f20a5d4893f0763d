"""The web page in headless Chromium, driven over the Chrome DevTools Protocol (a few lines
of `websockets`, no npm): a fake microphone plays a spoken WAV; the page connects over
WebRTC; the <video> element plays, and the avatar's mouth region changes while the speech
plays (compared with the idle frames before it). Skipped where chromium is not installed
(apt install chromium). STYLECAST_SCREENSHOT=FILE (.png or .jpg) saves a screenshot of the
page."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import websockets

from stylecast.engine.avatar import load_avatar
from stylecast.server.config import ServerConfig
from stylecast.server.runner import ServerThread

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SIZE = 256  # frame size the page asks for
LEAD_S = 5.0  # silence before the speech in the fake microphone's file

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt install chromium)"),
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed"),
]


class Cdp:
    """The smallest Chrome DevTools Protocol client: calls and results, events ignored."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params):
        self.n += 1
        ident = self.n
        await self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == ident:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    async def eval(self, expression: str):
        r = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.eval(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise TimeoutError(expression)


def chromium_args(profile: Path, wav: Path) -> list[str]:
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1100,760",
        "about:blank",
    ]


@pytest.fixture
def fake_mic(tmp_path) -> Path:
    """A 48 kHz 16-bit WAV: LEAD_S of silence, a sentence, 3 s of silence."""
    speech = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(speech), "Hello, I am talking to you through the browser."],
        check=True,
    )
    wav = tmp_path / "mic.wav"
    subprocess.run(
        [
            "sox",
            str(speech),
            "-r",
            "48000",
            "-b",
            "16",
            "-c",
            "1",
            str(wav),
            "pad",
            str(LEAD_S),
            "3",
        ],
        check=True,
    )
    return wav


def mouth_box(size: int) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the default avatar's mouth and chin in a size x size frame."""
    lm = load_avatar("default").landmarks[:, :2]
    scale = size / load_avatar("default").image.shape[0]
    left, right, upper, lower = lm[61], lm[291], lm[13], lm[14]
    w = right[0] - left[0]
    box = (left[0] - 0.15 * w, upper[1] - 0.3 * w, right[0] + 0.15 * w, lower[1] + 0.6 * w)
    return tuple(int(np.rint(v * scale)) for v in box)


def save_screenshot(png: bytes, path: str) -> None:
    """The page's screenshot as PNG, or as JPEG for a .jpg path (docs/web_page.jpg is made by
    `STYLECAST_SCREENSHOT=docs/web_page.jpg python -m pytest tests/test_web.py`)."""
    if Path(path).suffix.lower() in (".jpg", ".jpeg"):
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 82])
        assert ok
        png = buf.tobytes()
    Path(path).write_bytes(png)


SAMPLER_JS = """
(() => {
  // every 100 ms, in the page: the video's time and the gray pixels of the mouth region
  const v = document.getElementById('avatar');
  const [x0, y0, x1, y1] = %s;
  const c = document.createElement('canvas');
  const g = c.getContext('2d', {willReadFrequently: true});
  window._scSamples = [];
  window._scTimer = setInterval(() => {
    if (!v.videoWidth) return;
    c.width = v.videoWidth; c.height = v.videoHeight;
    g.drawImage(v, 0, 0);
    const d = g.getImageData(x0, y0, x1 - x0, y1 - y0).data;
    const gray = [];
    for (let i = 0; i < d.length; i += 4) gray.push((d[i] + d[i + 1] + d[i + 2]) / 3 | 0);
    window._scSamples.push({now: performance.now(), t: v.currentTime, w: v.videoWidth,
                            h: v.videoHeight, paused: v.paused, ready: v.readyState, gray});
  }, 100);
})()
"""


AV_JS = """
(() => {
  // lip sync as the browser presents it: the mouth box of every video frame at its display
  // time (requestVideoFrameCallback), and the RMS of the received audio every 10 ms (an
  // analyser on the same stream), both on performance.now()
  const v = document.getElementById('avatar');
  const [x0, y0, x1, y1] = %s;
  const c = document.createElement('canvas');
  const g = c.getContext('2d', {willReadFrequently: true});
  window._scMouth = [];
  window._scAudio = [];
  const onFrame = (now, meta) => {
    c.width = v.videoWidth; c.height = v.videoHeight;
    g.drawImage(v, 0, 0);
    const d = g.getImageData(x0, y0, x1 - x0, y1 - y0).data;
    const gray = [];
    for (let i = 0; i < d.length; i += 4) gray.push((d[i] + d[i + 1] + d[i + 2]) / 3 | 0);
    window._scMouth.push([meta.expectedDisplayTime, gray]);
    v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(v.srcObject).connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  window._scAudioTimer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let e = 0;
    for (const x of buf) e += x * x;
    window._scAudio.push([performance.now(), Math.sqrt(e / buf.length)]);
  }, 10);
  return ctx.state;
})()
"""


def av_offset_ms(mouth: list, audio: list, started: float) -> float:
    """Speech onset in the picture minus speech onset in the sound (ms; positive: the
    picture is later), as the browser presents them. Sound: the first 10 ms block above
    -50 dBFS (the session plays digital silence before). Picture: the first frame whose
    mouth region changes from the previous frame by more than twice the largest such change
    in the 300-800 ms before the sound, plus one gray level (the idle head drifts slowly;
    an opening mouth changes the region abruptly). Resolution: one frame (33 ms)."""
    times = np.array([m[0] for m in mouth])
    crops = np.array([m[1] for m in mouth], np.float32)
    rms = np.array(audio, float)
    sound_on = rms[(rms[:, 1] > 0.003) & (rms[:, 0] > started - 1000), 0][0]
    step = np.r_[0.0, np.abs(np.diff(crops, axis=0)).mean(axis=1)]  # per-frame change
    ref = (times > sound_on - 800) & (times < sound_on - 300)
    assert ref.sum() >= 5, "too few frames before the speech"
    moving = (times > sound_on - 300) & (step > 2.0 * step[ref].max() + 1.0)
    return float(times[moving][0] - sound_on)


async def test_page_plays_the_avatar_and_the_mouth_moves_with_speech(tmp_path, fake_mic):
    config = ServerConfig(port=0, data_dir=tmp_path / "data")
    with ServerThread(config) as server:
        proc = subprocess.Popen(
            chromium_args(tmp_path / "profile", fake_mic),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port_file = tmp_path / "profile" / "DevToolsActivePort"
            for _ in range(300):
                if port_file.exists() and port_file.read_text().count("\n") >= 1:
                    break
                await asyncio.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
            page = next(t for t in targets if t["type"] == "page")
            async with websockets.connect(page["webSocketDebuggerUrl"], max_size=2**26) as ws:
                cdp = Cdp(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=server.url + "/")
                await cdp.wait_for("document.getElementById('style-a')?.options.length > 0")
                assert await cdp.eval("document.getElementById('avatar-select').value") == "default"
                await cdp.eval(f"document.getElementById('size').value = '{SIZE}'")
                await cdp.eval("stylecastPage.start()")
                await cdp.wait_for("stylecastPage.link?.pc.connectionState === 'connected'")
                await cdp.eval(SAMPLER_JS % list(mouth_box(SIZE)))
                await cdp.eval(AV_JS % list(mouth_box(SIZE)))
                t0 = time.monotonic()
                while time.monotonic() - t0 < LEAD_S + 10.0:
                    await asyncio.sleep(0.3)
                    events = await cdp.eval("stylecastPage.events")
                    if any(e["type"] == "playback_finished" for e in events):
                        break
                await asyncio.sleep(0.5)
                samples = await cdp.eval("clearInterval(window._scTimer), window._scSamples")
                mouth = await cdp.eval("window._scMouth")
                audio = await cdp.eval("clearInterval(window._scAudioTimer), window._scAudio")
                shot = await cdp.call("Page.captureScreenshot", format="png")
                if os.environ.get("STYLECAST_SCREENSHOT"):
                    png = base64.b64decode(shot["data"])
                    save_screenshot(png, os.environ["STYLECAST_SCREENSHOT"])
                await cdp.eval("stylecastPage.stop()")
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    assert samples, "the video never showed a frame"
    last = samples[-1]
    assert (last["w"], last["h"]) == (SIZE, SIZE)
    assert not last["paused"] and last["ready"] >= 2
    assert last["t"] - samples[0]["t"] > 2.0  # the video element plays on
    kinds = [e["type"] for e in events]
    assert "segment_started" in kinds, events
    started = next(e["at"] for e in events if e["type"] == "segment_started")
    finished = next((e["at"] for e in events if e["type"] == "playback_finished"), 1e18)
    crops = np.array([s["gray"] for s in samples], np.float32)
    times = np.array([s["now"] for s in samples])
    idle = times < started
    speaking = (times > started + 250) & (times < finished)
    assert idle.sum() >= 3 and speaking.sum() >= 5, (idle.sum(), speaking.sum())
    # frame-to-frame change of the mouth region (gray levels): the head drifts slowly while
    # idle; speech opens and closes the mouth several times a second
    change = np.abs(np.diff(crops, axis=0)).mean(axis=1)
    idle, speaking = idle[1:], speaking[1:]
    assert change[speaking].max() > 6.0, change
    assert change[speaking].mean() > 2.0 * max(change[idle].mean(), 0.5), (
        change[idle],
        change[speaking],
    )
    # lips and sound together: the mouth opens with the loudness of the received audio
    lag = av_offset_ms(mouth, audio, started)
    print(f"A/V offset in the browser: {lag:+.0f} ms (positive: video later)")
    assert abs(lag) <= 100, lag  # ITU-R BT.1359 finds +45 / -125 ms undetectable
