"""`stylecast render`, `stylecast motion` and `stylecast demo` end to end: the MP4 has the
motion's frame count at 30 FPS and an audio stream when one is given."""

from __future__ import annotations

import wave

import numpy as np
import pytest

import stylecast.cli.render as render_cli
from stylecast.cli import EXIT_INPUT, main
from stylecast.engine.motion import Motion, load_motion, save_motion, scripted_motion
from stylecast.engine.video import VideoReader, load_audio, probe


class StubRenderer:
    """Draws the jaw weight as brightness: enough to check frames arrive in order."""

    def __init__(self, size: int) -> None:
        self.size = size

    def render(self, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
        frame = np.zeros((self.size, self.size, 3), np.uint8)
        frame[:] = int(255 * expr[17])  # jawOpen
        return frame


@pytest.fixture
def stub_renderer(monkeypatch):
    monkeypatch.setattr(render_cli, "make_renderer", lambda avatar, size: StubRenderer(size))


def write_wav(path, seconds: float, rate: int = 22_050) -> None:
    t = np.arange(int(seconds * rate)) / rate
    pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def tiny_motion(frames: int = 20) -> Motion:
    expr = np.zeros((frames, 52), np.float32)
    expr[:, 17] = np.linspace(0, 1, frames)
    return Motion(expr, np.zeros((frames, 6)))


def test_render_writes_every_frame_at_30_fps_with_audio(tmp_path, stub_renderer, capsys):
    save_motion(tmp_path / "m.npz", tiny_motion(20))
    write_wav(tmp_path / "speech.wav", 2.0)  # longer than the motion: trimmed
    out = tmp_path / "sub" / "out.mp4"
    code = main(
        ["render", str(tmp_path / "m.npz"), "-o", str(out), "--audio",
         str(tmp_path / "speech.wav"), "--size", "64"]
    )  # fmt: skip
    assert code == 0
    info = probe(out)
    assert (info.width, info.height, info.fps, info.frames) == (64, 64, 30, 20)
    assert info.audio_rate == 48_000
    audio = load_audio(out, 16_000)
    assert abs(len(audio) / 16_000 - 20 / 30) < 0.05  # trimmed to the motion's 0.67 s
    with VideoReader(out) as reader:
        brightness = [int(f.mean()) for f in reader]
    assert brightness[0] < 10 and brightness[-1] > 245  # the jaw ramp, in order
    assert "20 frames" in capsys.readouterr().out


def test_render_pads_short_audio_and_reads_live_link_csv(tmp_path, stub_renderer, caplog):
    save_motion(tmp_path / "m.csv", tiny_motion(45))
    write_wav(tmp_path / "short.wav", 0.5)
    out = tmp_path / "out.mp4"
    with caplog.at_level("INFO"):
        code = main(["render", str(tmp_path / "m.csv"), "-o", str(out), "--audio",
                     str(tmp_path / "short.wav"), "--size", "64"])  # fmt: skip
    assert code == 0
    assert "padded with silence" in caplog.text
    assert probe(out).frames == 45
    assert abs(len(load_audio(out, 16_000)) / 16_000 - 1.5) < 0.05


def test_render_without_audio_has_no_audio_stream(tmp_path, stub_renderer):
    save_motion(tmp_path / "m.npz", tiny_motion(10))
    out = tmp_path / "out.mp4"
    assert main(["render", str(tmp_path / "m.npz"), "-o", str(out), "--size", "64"]) == 0
    assert probe(out).audio_rate == 0 and probe(out).frames == 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["render", "-o", "x.mp4"], "give a MOTION"),
        (["render", "absent.npz", "-o", "x.mp4"], "no such motion file"),
        (["render", "m.npz", "-o", "x.avi"], ".mp4"),
        (["render", "m.npz", "-o", "x.mp4", "--audio", "absent.wav"], "no such file"),
        (["render", "m.npz", "-o", "x.mp4", "--motion", "onnx-cpu"], "--motion apply to speech"),
        (
            ["render", "--audio", "a.wav", "-o", "x.mp4", "--motion", "magic"],
            "unknown motion backend 'magic'",
        ),
        (
            ["render", "--audio", "a.wav", "-o", "x.mp4", "--motion", "onnx-cpu:nowhere"],
            "nowhere is not a folder",
        ),
    ],
)
def test_render_bad_input_exits_2_with_a_message(
    tmp_path, stub_renderer, monkeypatch, capsys, argv, message
):
    monkeypatch.chdir(tmp_path)
    save_motion(tmp_path / "m.npz", tiny_motion(5))
    assert main(argv) == EXIT_INPUT
    assert message in capsys.readouterr().err


def test_render_size_must_be_even(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "m.npz", "-o", "x.mp4", "--size", "257"])
    assert exit_info.value.code == 2
    assert "even" in capsys.readouterr().err


def test_motion_script_and_convert(tmp_path):
    assert main(["motion", "script", "-o", str(tmp_path / "s.npz"), "--seconds", "2"]) == 0
    assert main(["motion", "convert", str(tmp_path / "s.npz"), "-o", str(tmp_path / "s.csv")]) == 0
    back = load_motion(tmp_path / "s.csv")
    np.testing.assert_allclose(back.expr, scripted_motion(2.0).expr, atol=1e-5)


def test_demo_speaks_and_renders(tmp_path, stub_renderer, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "-o", str(out), "--size", "64", "--text", "Hello there."]) == 0
    info = probe(out)
    assert info.frames > 20 and info.fps == 30
    assert info.audio_rate == 48_000  # espeak-ng is installed by scripts/setup.sh
    with VideoReader(out) as reader:
        jaw = np.array([f.mean() / 255 for f in reader])
    assert jaw.max() > 0.3  # the jaw follows the speech
    assert str(out.resolve()) in capsys.readouterr().out


# --- with the real default avatar and renderer ------------------------------------------


def test_render_with_the_default_avatar(tmp_path):
    save_motion(tmp_path / "m.npz", scripted_motion(1.0))
    write_wav(tmp_path / "speech.wav", 1.0)
    out = tmp_path / "out.mp4"
    argv = ["render", str(tmp_path / "m.npz"), "-o", str(out), "--size", "128",
            "--audio", str(tmp_path / "speech.wav")]  # fmt: skip
    assert main(argv) == 0
    info = probe(out)
    assert (info.width, info.frames, info.fps, info.audio_rate) == (128, 30, 30, 48_000)
    with VideoReader(out) as reader:
        frame = next(iter(reader))
    assert frame.std() > 20  # a picture, not a blank frame


def test_motion_from_video_of_the_default_avatar(tmp_path, capsys):
    """Render 2 s of the scripted motion, fit it back through the CLI, with the avatar's
    own neutral and with one estimated from the video."""
    truth = scripted_motion(2.0)
    save_motion(tmp_path / "m.npz", truth)
    video = tmp_path / "clip.mp4"
    assert main(["render", str(tmp_path / "m.npz"), "-o", str(video), "--size", "256"]) == 0
    for extra, name in ((["--avatar", "default"], "own.npz"), ([], "estimated.csv")):
        out = tmp_path / name
        assert main(["motion", "from-video", str(video), "-o", str(out), *extra]) == 0
        fitted = load_motion(out)
        assert fitted.frames == truth.frames
        jaw = np.corrcoef(fitted.channel("jawOpen"), truth.channel("jawOpen"))[0, 1]
        assert jaw > 0.8, (name, jaw)
    assert "60 frames" in capsys.readouterr().out


def test_motion_from_video_errors(tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    assert main(["motion", "from-video", str(junk), "-o", str(tmp_path / "m.npz")]) == EXIT_INPUT
    assert "junk.mp4" in capsys.readouterr().err
    blank = tmp_path / "blank.mp4"
    from stylecast.engine.video import VideoWriter

    with VideoWriter(blank, 128, 128) as writer:
        for i in range(10):
            writer.write(np.full((128, 128, 3), 20 * i, np.uint8))
    assert main(["motion", "from-video", str(blank), "-o", str(tmp_path / "m.npz")]) == EXIT_INPUT
    assert "face was found in 0 of 10 frames" in capsys.readouterr().err


def test_motion_from_an_image_folder(tmp_path):
    """A folder of PNG frames (name order, --fps) is footage too; a folder without images
    is refused."""
    import cv2

    from stylecast.engine.avatar import load_avatar
    from stylecast.engine.render import Renderer

    truth = scripted_motion(1.0)
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    renderer = Renderer(load_avatar("default"), 256)
    try:
        for t in range(0, truth.frames, 2):  # every other frame: 15 FPS footage
            frame = renderer.render(truth.expr[t], truth.pose[t])
            cv2.imwrite(str(frames_dir / f"{t:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        renderer.close()
    out = tmp_path / "m.npz"
    argv = ["motion", "from-video", str(frames_dir), "--fps", "15", "-o", str(out)]
    assert main([*argv, "--avatar", "default"]) == 0
    fitted = load_motion(out)
    assert abs(fitted.frames - truth.frames) <= 2  # 15 images at 15 FPS -> 1 s at 30 FPS
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["motion", "from-video", str(empty), "-o", str(out)]) == EXIT_INPUT


def test_render_speech_with_a_learned_motion_model(tmp_path, capsys):
    """`render --audio ... --motion onnx-cpu` runs the session on the shipped export: a
    video of the speech's length with its sound, moving differently from the baseline's."""
    from stylecast.paths import assets_dir

    if not (assets_dir() / "onnx" / "saas" / "manifest.json").is_file():
        pytest.skip("no shipped export in assets/onnx/saas")
    write_wav(tmp_path / "speech.wav", 1.5)
    videos = {}
    for spec in ("onnx-cpu", "baseline"):
        out = tmp_path / f"{spec}.mp4"
        argv = ["render", "--audio", str(tmp_path / "speech.wav"), "--motion", spec,
                "--style", "happy", "--size", "64", "-o", str(out)]  # fmt: skip
        assert main(argv) == 0
        info = probe(out)
        assert info.fps == 30 and info.audio_rate == 48_000 and info.frames >= 45
        with VideoReader(out) as reader:
            videos[spec] = np.stack(list(reader)).astype(np.float32)
    assert "wrote" in capsys.readouterr().out
    n = min(len(v) for v in videos.values())
    assert np.abs(videos["onnx-cpu"][:n] - videos["baseline"][:n]).mean() > 1.0


def test_motion_from_audio_through_the_engine(tmp_path, capsys):
    """Speech -> a motion file through a motion backend's step (no torch), aligned with
    the audio; a preset, a mix and a style clip all work; bad styles exit 2."""
    from stylecast.engine.baseline import BaselineMotion
    from stylecast.engine.face import INDEX

    write_wav(tmp_path / "speech.wav", 1.0)
    run = ["motion", "from-audio", str(tmp_path / "speech.wav")]
    assert main([*run, "-o", str(tmp_path / "a.npz"), "--style", "happy"]) == 0
    happy = load_motion(tmp_path / "a.npz")
    assert happy.frames == 30 and happy.fps == 30
    assert happy.channel("jawOpen").max() > 0.2  # a loud tone opens the mouth
    assert main([*run, "-o", str(tmp_path / "b.csv"), "--style", "happy:1,sad:1"]) == 0
    mixed = load_motion(tmp_path / "b.csv")
    smile = INDEX["mouthSmileLeft"]
    assert mixed.expr[:, smile].mean() < happy.expr[:, smile].mean()
    # a style clip: the baseline reads its own happy motion back as happy
    assert main([*run, "-o", str(tmp_path / "c.npz"), "--style", str(tmp_path / "a.npz")]) == 0
    again = load_motion(tmp_path / "c.npz")
    code = BaselineMotion().extract_style(happy.expr, happy.pose)
    assert code.argmax() == 1 and np.allclose(again.expr, happy.expr, atol=0.05)
    for style, words in (("grumpy", "unknown style 'grumpy'"), ("happy:-1", "must be > 0")):
        assert main([*run, "-o", str(tmp_path / "d.npz"), "--style", style]) == EXIT_INPUT
        assert words in capsys.readouterr().err
