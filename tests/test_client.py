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
