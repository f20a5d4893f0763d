"""The A/V sync benchmark's measurement of one file (bench/bench_av_sync.py): lip gap
against loudness (the lag where they correlate best, to a fraction of a frame), what ITU-R
BT.1359 says a viewer makes of that lag, whether the lips close on every true /p/ /b/ /m/,
and where the speech sits against where the tool said it starts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bench.av_sync_clips import Clip
from bench.av_sync_movie import (
    FPS,
    RATE,
    SAMPLES_PER_FRAME,
    Container,
    Mouth,
    aligned_audio,
    container_check,
    fill_gaps,
    frame_loudness,
    locate,
    read_movie,
    track_mouth,
)
from stylecast.training.metrics import (
    LOUDNESS_FLOOR_DB,
    SYNC_MAX_LAG,
    bilabial_frames,
    lagged_correlations,
    lip_sync_offset,
)
from stylecast.training.timeline import Phone

# Lips count as closed when MediaPipe's mid-mouth gap is within this of the gap it reads on
# the avatar's rest face (inter-ocular units; 0.01 ~ 0.6 mm on a 63 mm eye distance, about
# one pixel at 512 px; the rest face reads 0.004 and an open vowel 0.1-0.25).
CLOSED_MARGIN_IOD = 0.01
LOOSE_MARGIN_IOD = 0.02  # a looser reading (~1.2 mm): lips that nearly meet


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
