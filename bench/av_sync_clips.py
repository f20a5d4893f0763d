"""The A/V sync benchmark's clips (bench/bench_av_sync.py): test-split utterances of the
corpus with their true motion (in sync and LATE_FRAMES late), and espeak-ng sentences full of
p/b/m, each with its true phone timings; and the motion backends that speak them.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from bench.av_sync_movie import RATE
from stylecast.training.timeline import Phone

LATE_FRAMES = 3  # the shifted reference: true motion this many frames late
BACKENDS = {  # label -> --motion spec
    "baseline": "baseline",
    "SAAS": "onnx-cpu",
    "StyleTalk": "onnx-cpu:assets/onnx/styletalk",
}
COMMON_STYLES = ("neutral", "happy", "sad", "angry", "surprised")  # presets of every backend
ESPEAK_SENTENCES = (  # (text, a held-out voice of training/tts.py, style)
    ("Bob bought a big blue map for my mom.", "en-us+f5-r140-p70-g85", "neutral"),
    ("Maybe Pam will pump up the bike by the pub.", "en-us-nyc+klatt4-r140-p30-g45", "happy"),
)


@dataclass
class Clip:
    name: str
    wav: Path  # 16 kHz mono
    speech: np.ndarray  # (S,) float32 at RATE, for locating it in the tracks
    phones: tuple[Phone, ...]
    style: str
    truth: tuple[Path, Path] | None = None  # motion files: in sync, LATE_FRAMES late


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def make_clips(corpus: Path, n_corpus: int, work: Path) -> list[Clip]:
    from stylecast.engine.motion import Motion, save_motion
    from stylecast.training.corpus import CorpusReader, read_shard
    from stylecast.training.tts import synthesize

    reader = CorpusReader(corpus, "test")
    shard = min(reader.shards, key=lambda s: s["utterances"])  # the smallest: quick to read
    utts = read_shard(corpus / f"{shard['name']}.npz", "test")
    utts.sort(key=lambda u: (-sum(p.phone in ("P", "B", "M") for p in u.phones), u.index))
    clips = []
    for u in utts[:n_corpus]:
        name = f"test-{u.index}"
        paths = (work / f"{name}-truth.npz", work / f"{name}-truth-late.npz")
        save_motion(paths[0], Motion(u.expr, u.pose))
        late = np.concatenate([np.repeat(u.expr[:1], LATE_FRAMES, 0), u.expr[:-LATE_FRAMES]])
        save_motion(paths[1], Motion(late, u.pose))
        style = u.emotion if u.emotion in COMMON_STYLES else "neutral"
        clips.append(Clip(name, work / f"{name}.wav", u.audio, u.phones, style, paths))
    for k, (text, voice, style) in enumerate(ESPEAK_SENTENCES):
        u = synthesize(text, voice)
        clips.append(Clip(f"espeak-{k}", work / f"espeak-{k}.wav", u.audio, u.phones, style))
    for c in clips:
        write_wav(c.wav, c.speech, 16_000)
        c.speech = soxr.resample(c.speech, 16_000, RATE).astype(np.float32)
    return clips
