"""`stylecast client say` and `client mic` against a real server on loopback."""

import shutil
import subprocess

import numpy as np
import pytest

from stylecast.cli import EXIT_BACKEND, EXIT_INPUT, main
from stylecast.engine.video import load_audio, probe
from stylecast.server.config import ServerConfig
from stylecast.server.runner import ServerThread, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(ServerConfig(port=0, data_dir=tmp_path_factory.mktemp("d"))) as s:
        yield s


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Testing the client, one two."], check=True)
    return wav


def test_say_writes_the_spoken_video(server, speech, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    code = main(
        [
            "client",
            "say",
            str(speech),
            "-o",
            str(out),
            "--url",
            server.ws_url,
            "--size",
            "128",
            "--style",
            '{"happy": 0.5, "sad": 0.5}',
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed
    info = probe(out)
    seconds = len(load_audio(speech, 16_000)) / 16_000
    assert (info.width, info.height) == (128, 128)
    # frame 0 to the end of speech (after the playout delay) plus 0.5 s of idling
    assert seconds + 0.5 < info.frames / 30 < seconds + 1.5, (info.frames, seconds)
    got = load_audio(out, 16_000)
    want = load_audio(speech, 16_000)
    # the speech is in the file, delayed by the playout delay: find it by correlation
    lag = np.argmax(np.correlate(got[: len(want) + 16_000], want[:8000], "valid"))
    seg = got[lag : lag + len(want)]
    corr = np.corrcoef(seg[: len(want)], want[: len(seg)])[0, 1]
    assert corr > 0.95, corr
    assert 0.1 < lag / 16_000 < 0.6  # ~4-5 frames of playout delay plus AAC priming


def test_say_refuses_bad_arguments(server, tmp_path, capsys):
    assert (
        main(["client", "say", str(tmp_path / "none.wav"), "-o", str(tmp_path / "o.mp4")])
        == EXIT_INPUT
    )
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    assert (
        main(["client", "say", str(wav), "-o", str(tmp_path / "o.avi"), "--url", server.ws_url])
        == EXIT_INPUT
    )
    assert "mp4" in capsys.readouterr().err


def test_say_without_a_server_says_so(speech, tmp_path, capsys):
    url = f"ws://127.0.0.1:{free_port()}"
    assert (
        main(["client", "say", str(speech), "-o", str(tmp_path / "o.mp4"), "--url", url])
        == EXIT_BACKEND
    )
    assert "cannot connect" in capsys.readouterr().err


def test_mic_without_a_virtual_camera_says_what_to_install(capsys):
    try:
        import pyvirtualcam  # noqa: F401

        pytest.skip("pyvirtualcam is installed; the no-camera message is not reachable")
    except ImportError:
        pass
    assert main(["client", "mic", "--url", "ws://127.0.0.1:9"]) == EXIT_BACKEND
    err = capsys.readouterr().err
    assert "pyvirtualcam" in err and "v4l2loopback" in err and "OBS" in err


async def test_mic_stream_is_cut_into_segments(server, speech):
    """The mic client's sending half: 20 ms microphone blocks through the speech gate ->
    one segment per utterance, ended by the silence after it."""
    import asyncio

    from stylecast.clients.mic import MIC_BLOCK, MIC_RATE, _send
    from stylecast.clients.stream_client import StreamClient

    x = load_audio(speech, MIC_RATE)
    pcm = np.clip(np.rint(x * 32767), -32768, 32767).astype(np.int16)
    pcm = np.concatenate([np.zeros(MIC_RATE // 2, np.int16), pcm, np.zeros(MIC_RATE, np.int16)])
    blocks: asyncio.Queue = asyncio.Queue()
    for i in range(0, len(pcm) - MIC_BLOCK + 1, MIC_BLOCK):
        blocks.put_nowait(pcm[i : i + MIC_BLOCK, None])
    async with StreamClient(server.ws_url) as client:
        await client.start(sample_rate=MIC_RATE, outputs=("audio",))
        sender = asyncio.create_task(_send(client, blocks))
        events = []
        async with asyncio.timeout(15):
            async for item in client:
                if isinstance(item, dict) and item["type"] != "pong":
                    events.append(item)
                    if item["type"] == "playback_finished":
                        break
        sender.cancel()
    assert [e["type"] for e in events] == ["segment_started", "playback_finished"], events
    speech_s = len(x) / MIC_RATE
    # the utterance, 0.2 s of pre-roll and ~0.5 s of hangover; leading silence not sent
    assert speech_s < events[1]["position"] < speech_s + 0.9, (events, speech_s)
