"""Lip sync as a viewer sees it: speech rendered to MP4s, then judged from the file alone.

    python -m bench.bench_av_sync [--corpus data/corpus20h] [--clips 4] [--no-server]

1. Speech: --clips utterances of the corpus's test split (voices, performers and sentences
   no model was trained on; the most p/b/m first) and two espeak-ng sentences full of
   p/b/m, each with its true phone timings.
2. Every clip is spoken by each motion backend through `stylecast render --audio` (a real
   session run offline) and through the server (`stylecast serve` on a free local port +
   `stylecast client say`, in real time over the WebSocket). The corpus clips' true motion
   is also rendered from a motion file, in sync and 3 frames late: the reference rows that
   calibrate the pixel pipeline.
3. Each MP4 is read back with PyAV and judged on its own pixels and its own audio track:
   container offset (first audio vs first video pts), where the speech sits in the audio
   track vs the frame the tool said it starts on, MediaPipe's inner-lip gap per frame
   against the loudness of the same frame's audio (`training.metrics.lip_sync_offset`:
   correlation r at lag 0 and the lag in frames where it peaks, > 0 = lips late), and
   whether the lips close within +-1 frame of every true /p/ /b/ /m/.
4. A table (median over clips) goes to docs/benchmarks.md ("av-sync"), and a contact sheet
   of mouths around bilabials to docs/figures/av-sync-bilabials.png.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import soxr

from bench.report import write_section
from stylecast.engine.landmarks import LandmarkTracker
from stylecast.engine.prosody import loudness_db
from stylecast.training.metrics import (
    INNER_LOWER_MID,
    INNER_UPPER_MID,
    LOUDNESS_FLOOR_DB,
    SYNC_MAX_LAG,
    bilabial_frames,
    lagged_correlations,
    lip_sync_offset,
)
from stylecast.training.timeline import Phone

FPS = 30
RATE = 48_000  # Hz of the MP4s' audio tracks
SAMPLES_PER_FRAME = RATE // FPS  # 1600 samples = 33.3 ms
LOUDNESS_WINDOW = 2400  # samples = 50 ms centred on each frame, as engine/prosody.py
IRIS_CENTRES = (468, 473)  # MediaPipe refined landmarks: the two iris centres
# Lips count as closed when MediaPipe's mid-mouth gap is within this of the gap it reads on
# the avatar's rest face (inter-ocular units; 0.01 ~ 0.6 mm on a 63 mm eye distance, about
# one pixel at 512 px; the rest face reads 0.004 and an open vowel 0.1-0.25).
CLOSED_MARGIN_IOD = 0.01
LOOSE_MARGIN_IOD = 0.02  # a looser reading (~1.2 mm): lips that nearly meet
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
SHEET_BILABIALS = 2  # bilabials per backend on the contact sheet (the longest)
SHEET_FRAMES = range(-2, 7)  # frames shown around each, from its middle (lips up to 6 late)
SHEET_TILE = 96  # pixels per mouth tile


# --- judging one file (pure functions of arrays, and the MP4 reader) -------------------------
class Movie(NamedTuple):
    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB per decoded video frame
    video_pts: np.ndarray  # (T,) seconds
    audio: np.ndarray  # (S,) float32 mono at RATE, from the first decoded sample
    audio_start: float  # seconds: pts of the first decoded audio sample


def read_movie(path: str | Path, keep_frames: bool = True) -> Movie:
    """Decode an MP4's video frames (with their pts) and its first audio track, mono."""
    frames, pts = [], []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        for f in c.decode(stream):
            pts.append(float(f.pts * f.time_base))
            if keep_frames:
                frames.append(f.to_ndarray(format="rgb24"))
    chunks, start = [], None
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return Movie(frames, np.array(pts), np.zeros(0, np.float32), 0.0)
        stream = c.streams.audio[0]
        if stream.codec_context.sample_rate != RATE:
            raise ValueError(f"{path}: audio at {stream.codec_context.sample_rate} Hz, not {RATE}")
        for f in c.decode(stream):
            if start is None:
                start = float(f.pts * f.time_base)
            chunks.append(f.to_ndarray().astype(np.float32).mean(axis=0))
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return Movie(frames, np.array(pts), audio, start or 0.0)


class Container(NamedTuple):
    offset_ms: float  # first audio sample's pts - first video frame's pts
    length_gap_ms: float  # audio track length - video length (frames / 30)
    irregular_pts: int  # video frames not 1/30 s after the previous one


def container_check(movie: Movie) -> Container:
    steps = np.diff(movie.video_pts)
    return Container(
        1000 * (movie.audio_start - movie.video_pts[0]),
        1000 * (len(movie.audio) / RATE - len(movie.video_pts) / FPS),
        int(np.sum(np.abs(steps - 1 / FPS) > 1e-3)),
    )


def frame_loudness(audio: np.ndarray, n_frames: int, rate: int = RATE) -> np.ndarray:
    """(n_frames,) dBFS of a 50 ms window centred on each 30 FPS frame (sample 0 = frame 0)."""
    per_frame, half = rate / FPS, round(0.025 * rate)
    padded = np.concatenate([np.zeros(half, np.float32), audio, np.zeros(2 * half + 1, np.float32)])
    need = int(np.ceil(n_frames * per_frame)) + 2 * half + 1
    padded = np.pad(padded, (0, max(0, need - len(padded))))
    starts = np.round((np.arange(n_frames) + 0.5) * per_frame).astype(np.int64)  # centres
    windows = np.stack([padded[s : s + 2 * half] for s in starts])  # (T, 50 ms)
    return loudness_db(windows)


def locate(track: np.ndarray, speech: np.ndarray) -> int:
    """Sample of `track` at which `speech` (same rate) starts: the peak of their
    cross-correlation (FFT), searched over every position where speech overlaps the track."""
    n = len(track) + len(speech)
    size = 1 << int(np.ceil(np.log2(n)))
    xc = np.fft.irfft(np.fft.rfft(track, size) * np.conj(np.fft.rfft(speech, size)), size)
    lags = np.concatenate([np.arange(0, len(track)), np.arange(-len(speech) + 1, 0)])
    picks = np.concatenate([np.arange(0, len(track)), np.arange(size - len(speech) + 1, size)])
    return int(lags[np.argmax(xc[picks])])


def lip_gap(points: np.ndarray) -> float:
    """MediaPipe (478, 3) landmarks -> the inner-lip gap at mid-mouth (5 point pairs), in
    inter-ocular distances (iris centre to iris centre)."""
    upper, lower = points[list(INNER_UPPER_MID), :2], points[list(INNER_LOWER_MID), :2]
    iod = np.linalg.norm(points[IRIS_CENTRES[0], :2] - points[IRIS_CENTRES[1], :2])
    return float(np.linalg.norm(upper - lower, axis=1).mean() / iod)


def subframe_lag(gap: np.ndarray, loud: np.ndarray, lag: float) -> float:
    """The integer peak lag of lip_sync_offset refined by a parabola through the correlations
    at lag - 1, lag, lag + 1 (frames; nan stays nan)."""
    if not np.isfinite(lag):
        return lag
    r = lagged_correlations(gap, np.maximum(loud, LOUDNESS_FLOOR_DB), SYNC_MAX_LAG)
    k = int(lag) + SYNC_MAX_LAG
    if k == 0 or k == len(r) - 1 or not np.all(np.isfinite(r[k - 1 : k + 2])):
        return float(lag)
    left, mid, right = r[k - 1 : k + 2]
    curve = left - 2 * mid + right
    return float(lag) + (0.5 * (left - right) / curve if curve < 0 else 0.0)


# ITU-R BT.1359 (1998): a viewer detects sound AHEAD of the picture (our lips late) from about
# 45 ms and sound behind it from 125 ms; acceptable end to end up to 90 / 185 ms.
DETECT_MS = {"lips late": 45.0, "lips early": 125.0}
ACCEPT_MS = {"lips late": 90.0, "lips early": 185.0}


def verdict(lag_frames: float) -> str:
    """What BT.1359's thresholds say a viewer makes of lips `lag_frames` late (< 0: early)."""
    if not np.isfinite(lag_frames):
        return "mouth still"
    side = "lips late" if lag_frames >= 0 else "lips early"
    ms = abs(lag_frames) * 1000 / FPS
    if ms <= DETECT_MS[side]:
        return f"in sync ({ms:.0f} ms {side})"
    if ms <= ACCEPT_MS[side]:
        return f"noticeable ({ms:.0f} ms {side})"
    return f"out of sync ({ms:.0f} ms {side})"


def shifted(phones: tuple[Phone, ...], seconds: float) -> list[Phone]:
    return [replace(p, start=p.start + seconds, end=p.end + seconds) for p in phones]


def closures(
    gap: np.ndarray, phones: tuple[Phone, ...], start_s: float, closed_below: float
) -> tuple[int, int]:
    """(closed, total) true /p/ /b/ /m/ (timings + start_s into the file) during which the
    lips close on at least one frame, +-1 frame of tolerance."""
    spans = bilabial_frames(shifted(phones, start_s), len(gap))
    return sum(int(np.nanmin(gap[s]) < closed_below) for s in spans), len(spans)


class Mouth(NamedTuple):
    gap: np.ndarray  # (T,) inter-ocular units; nan where MediaPipe found no face
    centre: np.ndarray  # (T, 2) pixels: the mouth's middle
    iod: np.ndarray  # (T,) pixels


def track_mouth(frames: list[np.ndarray]) -> Mouth:
    gap, centre, iod = (
        np.full(len(frames), np.nan),
        np.zeros((len(frames), 2)),
        np.ones(len(frames)),
    )
    with LandmarkTracker() as tracker:
        for t, frame in enumerate(frames):
            face = tracker.track(frame)
            if face is None:
                continue
            gap[t] = lip_gap(face.points)
            centre[t] = face.points[[13, 14], :2].mean(axis=0)
            iod[t] = face.interocular
    return Mouth(gap, centre, iod)


# --- the clips ---------------------------------------------------------------------------------
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


# --- rendering through the CLI -----------------------------------------------------------------
def at_niceness(value: int | None):
    """A preexec_fn that gives the child process this absolute nice value (None: inherit)."""
    if value is None:
        return None
    return lambda: os.setpriority(os.PRIO_PROCESS, 0, value)


def stylecast(*args: str, timeout: float = 120, nice: int | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stylecast", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=at_niceness(nice),
    )
    if done.returncode:
        raise RuntimeError(f"stylecast {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def speech_frame(stdout: str) -> tuple[int, int]:
    """(frame the tool says the speech starts on, frames it says had no new picture)."""
    start = re.search(r"from frame (-?\d+)", stdout)
    dropped = re.search(r"(\d+) frames without a new picture", stdout)
    if start is None:
        raise RuntimeError(f"no speech start in {stdout!r}")
    return int(start.group(1)), int(dropped.group(1)) if dropped else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`stylecast serve --motion SPEC` on a free port, for the duration of a with-block; it
    and its clients run at nice value `nice` (a real-time path: on a shared machine they are
    given the timing benchmarks' priority, or the engine refuses or starves the session)."""

    def __init__(self, spec: str, nice: int | None = None) -> None:
        self.spec = spec
        self.nice = nice
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        args = ["serve", "--port", str(self.port), "--max-sessions", "1", "--motion", self.spec]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stylecast", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=at_niceness(self.nice),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/health", timeout=2):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"stylecast serve --motion {self.spec} exited") from None
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"stylecast serve --motion {self.spec} did not come up in 60 s")

    def say(self, clip: Clip, out: Path) -> str:
        url = f"ws://127.0.0.1:{self.port}"
        return stylecast(
            "client", "say", str(clip.wav), "-o", str(out), "--url", url, "--style", clip.style,
            nice=self.nice,
        )  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- judging -----------------------------------------------------------------------------------
@dataclass
class Judged:
    system: str  # a BACKENDS label, or the true motion
    path: str  # how the file was made
    clip: Clip
    file: Path
    claimed_start: int  # the frame the tool says the speech starts on
    no_picture: int  # frames the tool says had no new picture (server: dropped video)
    container: Container
    placed_ms: float  # where the speech sits in the audio track - claimed_start, ms
    r: float
    lag: float  # frames, sub-frame (parabola through the peak)
    closed: int
    total: int
    closed_loose: int  # within LOOSE_MARGIN_IOD instead
    mouth: Mouth


def aligned_audio(movie: Movie) -> np.ndarray:
    """The audio track on the video's clock: sample 0 plays with the first video frame."""
    shift = round((movie.audio_start - movie.video_pts[0]) * RATE)
    if shift >= 0:
        return np.concatenate([np.zeros(shift, np.float32), movie.audio])
    return movie.audio[-shift:]


def fill_gaps(gap: np.ndarray) -> np.ndarray:
    ok = np.isfinite(gap)
    if not ok.any():
        raise RuntimeError("MediaPipe found the face in no frame")
    t = np.arange(len(gap))
    return np.interp(t, t[ok], gap[ok])


def judge(system, path, clip, file, claimed, no_picture, closed_below) -> Judged:
    movie = read_movie(file)
    audio = aligned_audio(movie)
    mouth = track_mouth(movie.frames)
    gap = fill_gaps(mouth.gap)
    loud = frame_loudness(audio, len(gap))
    r, lag = lip_sync_offset(gap, loud)
    lag = subframe_lag(gap, loud, lag)
    located = locate(audio, clip.speech)
    closed, total = closures(gap, clip.phones, located / RATE, closed_below)
    loose = closed_below - CLOSED_MARGIN_IOD + LOOSE_MARGIN_IOD
    closed_loose, _ = closures(gap, clip.phones, located / RATE, loose)
    placed = 1000 * (located - claimed * SAMPLES_PER_FRAME) / RATE
    j = Judged(system, path, clip, file, claimed, no_picture, container_check(movie), placed,
               r, lag, closed, total, closed_loose, mouth._replace(gap=gap))  # fmt: skip
    print(
        f"{system:>10} {path:<12} {clip.name:<10} lag {lag:+.1f} r {r:.2f} "
        f"offset {j.container.offset_ms:+.1f} ms placed {placed:+.1f} ms "
        f"p/b/m {closed}/{total} no-picture {no_picture}",
        flush=True,
    )
    return j


def rest_gap(work: Path) -> float:
    """MediaPipe's mid-mouth gap on the avatar's rest face, rendered and encoded like the rest."""
    from stylecast.engine.motion import Motion, save_motion

    still = work / "rest.npz"
    save_motion(still, Motion(np.zeros((24, 52), np.float32), np.zeros((24, 6), np.float32)))
    stylecast("render", str(still), "--avatar", "default", "-o", str(work / "rest.mp4"))
    gap = track_mouth(read_movie(work / "rest.mp4").frames).gap
    return float(np.nanmedian(gap[8:]))  # after the tracker has settled


def run_all(
    clips: list[Clip], work: Path, closed_below: float, server: bool, server_nice: int | None
) -> tuple[list[Judged], list[str]]:
    """Render and judge every clip on every path; (judged files, failures) where a failure is
    a server session that did not complete (refused for capacity on a busy machine...)."""
    out, failures = [], []
    for clip in clips:
        for k, file in enumerate(clip.truth or ()):
            mp4 = work / f"truth{k}-{clip.name}.mp4"
            stylecast("render", str(file), "--avatar", "default", "--audio", str(clip.wav),
                      "-o", str(mp4))  # fmt: skip
            label = "true motion" if k == 0 else f"true, {LATE_FRAMES} frames late"
            out.append(judge(label, "motion file", clip, mp4, 0, 0, closed_below))
    for label, spec in BACKENDS.items():
        for clip in clips:
            mp4 = work / f"{label}-render-{clip.name}.mp4"
            stdout = stylecast("render", "--audio", str(clip.wav), "--avatar", "default",
                               "--style", clip.style, "--motion", spec, "-o", str(mp4))  # fmt: skip
            out.append(judge(label, "render", clip, mp4, *speech_frame(stdout), closed_below))
    if server:
        for label, spec in BACKENDS.items():
            with Server(spec, server_nice) as srv:
                for clip in clips:
                    mp4 = work / f"{label}-server-{clip.name}.mp4"
                    try:
                        stdout = srv.say(clip, mp4)
                    except (RuntimeError, subprocess.TimeoutExpired) as e:
                        failures.append(f"{label} server {clip.name}: {str(e)[-300:]}")
                        print(failures[-1], flush=True)
                        continue
                    claimed = speech_frame(stdout)
                    out.append(judge(label, "server", clip, mp4, *claimed, closed_below))
    return out, failures


# --- reporting ---------------------------------------------------------------------------------
def fmt_lags(lags: list[float]) -> str:
    return ", ".join(f"{v:+.1f}" if np.isfinite(v) else "still" for v in lags)


def table(results: list[Judged]) -> str:
    head = (
        "| system | path | lag, frames (median) | lag per clip | a viewer (BT.1359) | r (median) "
        "| container offset ms | speech placed vs claimed, ms (median / worst) | audio − video "
        "length ms | p/b/m closed | p/b/m nearly closed | frames without a new picture |\n"
        + "|---" * 12
        + "|\n"
    )
    rows, seen = [], []
    for j in results:
        if (j.system, j.path) not in seen:
            seen.append((j.system, j.path))
    for system, path in seen:
        js = [j for j in results if (j.system, j.path) == (system, path)]
        lags, rs = [j.lag for j in js], [j.r for j in js]
        placed = [j.placed_ms for j in js]
        closed, total = sum(j.closed for j in js), sum(j.total for j in js)
        loose = sum(j.closed_loose for j in js)
        worst = max(placed, key=abs)
        offset = statistics.median(j.container.offset_ms for j in js)
        lag = float(np.nanmedian(lags)) if np.isfinite(lags).any() else float("nan")
        rows.append(
            f"| {system} | {path} | {lag:+.1f} | {fmt_lags(lags)} | {verdict(lag)} | "
            f"{np.nanmedian(rs):.2f} | {offset:+.1f} | "
            f"{statistics.median(placed):+.1f} / {worst:+.1f} | "
            f"{statistics.median(j.container.length_gap_ms for j in js):+.1f} | "
            f"{closed}/{total} ({100 * closed / max(total, 1):.0f}%) | "
            f"{loose}/{total} ({100 * loose / max(total, 1):.0f}%) | "
            f"{sum(j.no_picture for j in js)} |"
        )
    return head + "\n".join(rows)


def sheet_bilabials(phones: tuple[Phone, ...]) -> list[Phone]:
    """The SHEET_BILABIALS longest p/b/m between two vowels (where the lips must close and
    open again within the word, unlike one before a pause), in time order."""
    from stylecast.training.tts import CMU_VOWELS

    inner = [
        b
        for a, b, c in zip(phones, phones[1:], phones[2:], strict=False)
        if b.phone in ("P", "B", "M") and a.phone in CMU_VOWELS and c.phone in CMU_VOWELS
    ]
    return sorted(
        sorted(inner, key=lambda p: p.start - p.end)[:SHEET_BILABIALS], key=lambda p: p.start
    )


def contact_sheet(results: list[Judged], clip: Clip, closed_below: float, path: Path) -> None:
    """Mouth crops at frames c-2..c+6 around SHEET_BILABIALS of `clip`'s p/b/m, one row per
    backend (the offline render; the server's rows look the same and would double the file);
    a tile inside the +-1-frame window has a green border when the lips are closed there,
    red when open."""
    import cv2

    picks = sheet_bilabials(clip.phones)
    rows = []
    for j in (j for j in results if j.clip is clip and j.system in BACKENDS and j.path == "render"):
        movie = read_movie(j.file)
        start = locate(aligned_audio(movie), clip.speech) / RATE
        tiles = []
        for p in picks:
            first, last = (
                int(np.floor((p.start + start) * FPS)) - 1,
                int(np.ceil((p.end + start) * FPS)),
            )
            centre = int((p.start + p.end) / 2 * FPS + start * FPS)
            for t in (centre + k for k in SHEET_FRAMES):
                t = min(max(t, 0), len(movie.frames) - 1)
                cx, cy = j.mouth.centre[t]
                half = int(0.6 * j.mouth.iod[t])
                x0, y0 = max(int(cx) - half, 0), max(int(cy) - half, 0)
                crop = movie.frames[t][y0 : y0 + 2 * half, x0 : x0 + 2 * half]
                tile = cv2.resize(crop, (SHEET_TILE, SHEET_TILE), interpolation=cv2.INTER_AREA)
                if first <= t <= last:
                    colour = (0, 200, 0) if j.mouth.gap[t] < closed_below else (220, 0, 0)
                    cv2.rectangle(tile, (0, 0), (SHEET_TILE - 1, SHEET_TILE - 1), colour, 3)
                label = f"{p.phone} {t - centre:+d}  {j.mouth.gap[t]:.3f}"
                cv2.putText(tile, label, (4, SHEET_TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                            (255, 255, 0), 1, cv2.LINE_AA)  # fmt: skip
                tiles.append(tile)
            tiles.append(np.full((SHEET_TILE, 6, 3), 255, np.uint8))  # between bilabials
        strip = np.concatenate(tiles[:-1], axis=1)
        name = np.full((SHEET_TILE, 150, 3), 255, np.uint8)
        cv2.putText(
            name, j.system, (6, 50), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
        )
        cv2.putText(name, j.path, (6, 75), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([name, strip], 1))
    sheet = np.concatenate(rows, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def revision_of(root: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus20h"))
    parser.add_argument("--clips", type=int, default=3, help="test-split utterances")
    parser.add_argument("--no-server", action="store_true", help="skip the WebSocket path")
    parser.add_argument(
        "--server-nice",
        type=int,
        default=-10,
        metavar="N",
        help="nice value of the server and its clients (default: %(default)s, the timing "
        "benchmarks' priority; needs root, else give the current one)",
    )
    parser.add_argument("--keep", type=Path, help="keep the MP4s in this folder")
    parser.add_argument("--sheet", type=Path, default=Path("docs/figures/av-sync-bilabials.png"))
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs")
    parser.add_argument(
        "--revision", help="the code measured, for the record (default: git describe --dirty)"
    )
    args = parser.parse_args()

    before, t0 = uptime(), time.monotonic()
    revision = args.revision or revision_of(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        clips = make_clips(args.corpus, args.clips, work)
        rest = rest_gap(work)
        closed_below = rest + CLOSED_MARGIN_IOD
        print(f"rest face: lip gap {rest:.4f} IOD; closed below {closed_below:.4f}", flush=True)
        results, failures = run_all(clips, work, closed_below, not args.no_server, args.server_nice)
        sheet_clip = next(c for c in clips if c.name.startswith("espeak"))
        contact_sheet(results, sheet_clip, closed_below, args.sheet)
    minutes = (time.monotonic() - t0) / 60
    text = table(results)
    if failures:
        text += "\n\nNot completed: " + "; ".join(failures)
    print(text)
    print(f"{minutes:.1f} min; contact sheet {args.sheet}")
    if args.no_write:
        return
    clip_list = ", ".join(f"{c.name} ({c.style}, {len(c.speech) / RATE:.1f} s)" for c in clips)
    body = f"""\
How a viewer sees lip sync: every MP4 is judged from its own pixels and its own audio
track, nothing the engine reports is trusted. Clips: {clip_list}; the corpus ones are
test-split utterances (held-out voices, performers and sentences), the espeak ones p/b/m
sentences ("{ESPEAK_SENTENCES[0][0]}", "{ESPEAK_SENTENCES[1][0]}") in held-out voices.
Paths: `render` = `stylecast render --audio X --avatar default --style S --motion M`
(a session run offline), `server` = `stylecast serve --motion M` on a local port +
`stylecast client say X` (real time over the WebSocket, 512 px JPEG frames; server and
client at nice {args.server_nice}, the timing benchmarks' priority), `motion
file` = the corpus's true motion rendered with `stylecast render motion.npz --audio X`
(in sync, and {LATE_FRAMES} frames late: the references that calibrate the pixel pipeline).
Code measured: {revision}. Load before `{before}`, after `{uptime()}`; the whole run took
{minutes:.1f} min at `nice -n 5`.

Read back with PyAV: **container offset** = pts of the first decoded audio sample minus
that of the first video frame (the AAC priming is removed by the decoder); **speech
placed vs claimed** = where the speech's waveform sits in the decoded track
(cross-correlation with the input speech) minus the frame the tool said it starts on
(`segment_started`); on the server path up to one frame is by design: real-time segments
start between frames, after a lead of silence (docs/engine.md, "The clock").
**lag / r**: MediaPipe face mesh (tracking mode) on every decoded frame, mid-mouth inner
lip gap (5 point pairs, in inter-ocular distances) against the loudness (dBFS, 50 ms
window centred on the frame) of the same file's audio, `training.metrics.lip_sync_offset`:
r at lag 0 and the lag in -15..15 frames where r peaks, > 0 = lips late (on the corpus
truth in rig units: 0.3 frames in sync, 3.1 three frames late). **p/b/m closed**: true
bilabials (espeak-ng phone timings, placed at the located speech start) during which the
pixel lip gap falls within {CLOSED_MARGIN_IOD} inter-ocular distances (about 0.6 mm, one
pixel) of the gap MediaPipe reads on the rendered rest face ({rest:.4f}), +-1 frame;
**nearly closed**: within {LOOSE_MARGIN_IOD} (about 1.2 mm).
Medians over clips; p/b/m summed. **A viewer (BT.1359)**: the median lag against ITU-R
BT.1359's thresholds: sound ahead of the picture (lips late) is detectable from ~45 ms and
unacceptable past 90 ms; sound behind it (lips early) from 125 / 185 ms.

{text}

Contact sheet (`{args.sheet}`): mouth crops from 2 frames before to 6 after the middle of
the {SHEET_BILABIALS} longest bilabials between two vowels of "{ESPEAK_SENTENCES[0][0]}"
(tiles labelled with the phone, the frame offset and the pixel lip gap), one row per
backend (offline render); a bordered tile is inside the bilabial's +-1-frame window: green
where the lips are closed, red where they are open.
"""
    write_section("av-sync", "Lip sync as watched: A/V sync measured on the rendered files", body)


if __name__ == "__main__":
    main()
