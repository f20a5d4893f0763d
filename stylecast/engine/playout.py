"""A session's playout: which audio plays on which frame, and what the model reads then.

Audio arrives in segments (pushes up to `end_segment()`). A segment gets a start frame S
when its first audio arrives: the first frame at which its features will be ready if the
rest keeps coming in real time, `ceil(30·arrival + delay)` with

    delay = 1 + front-end look-ahead + model look-ahead + resampler hold-back + jitter

frames (and never before the previous segment's end). Frame S + j then plays the segment's
48 kHz samples [1600 j, 1600 (j + 1)) and shows the motion the model computed from its
features of segment frame j (fed `lookahead` ticks earlier, as input frame S + j).

With `exact_start` (real-time sessions) the segment does not wait for the next frame
boundary: S = floor(30·arrival + delay) and the segment begins with a lead of silence
(a fraction of a frame, at the input rate) so that its first sample plays exactly `delay`
frames after its arrival; the lead is part of the segment for the front end and the
output alike, so frames and features stay aligned, and it is not counted in the
positions of events. This takes the 0-33 ms of rounding out of the latency. If the
features of a frame are not in when the model must read them (the client sends slower than
real time), one frame of silence is inserted and the rest of the segment moves one frame
later (an underrun, counted): audio is never dropped and video and audio stay together.
Frames outside segments play silence and feed the model silence, so the avatar idles.

Not thread-safe: the scheduler's worker thread owns it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from stylecast.engine.audio import AudioFrontEnd, FrameBatch
from stylecast.engine.clock import (
    OUTPUT_RATE,
    SAMPLES_PER_FRAME,
    PcmTo48k,
    resampler_holdback_s,
)
from stylecast.engine.face import FPS
from stylecast.engine.pcm import SAMPLE_RATE

SEGMENT_STARTED = "segment_started"
PLAYBACK_FINISHED = "playback_finished"


class Event(NamedTuple):
    """Something that happens on a frame. `position`: seconds of the segment's audio played
    when the event happens (0 for segment_started; the segment's full duration for an
    uninterrupted playback_finished)."""

    kind: str  # SEGMENT_STARTED or PLAYBACK_FINISHED
    segment: int  # segment id, 0, 1, 2 ... in push order
    position: float  # seconds of the segment's audio played
    interrupted: bool  # playback_finished after clear(); False otherwise


class FeatureRow(NamedTuple):
    mel: np.ndarray  # (16, 80) float32
    phoneme: int
    prosody: np.ndarray  # (3,) float32


@dataclass
class Segment:
    id: int
    start: int  # frame playing its first sample (moves later on an underrun)
    features: deque[FeatureRow] = field(default_factory=deque)  # frames not yet fed
    fed: int = 0  # segment frames fed to the model so far
    made: int = 0  # feature frames produced by the front end so far
    samples: int = 0  # 48 kHz samples received so far
    ended: bool = False
    frames: int = 0  # total frames, once ended
    played: int = 0  # frames played so far
    _chunks: list[np.ndarray] = field(default_factory=list)  # int16 not yet joined
    _buf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # joined audio
    _base: int = 0  # sample index of _buf[0] (earlier samples are played and dropped)
    lead: int = 0  # 48 kHz samples of silence before the segment's audio (exact_start)
    lead_in: int = 0  # the same lead in input samples, still to be prepended (first push)

    def add(self, pcm: np.ndarray) -> None:
        self._chunks.append(pcm)
        self.samples += len(pcm)

    def pcm(self, j: int) -> np.ndarray:
        """(1600,) int16: the samples of segment frame j (zero-padded past the end); the
        samples before it are dropped."""
        a, b = j * SAMPLES_PER_FRAME, (j + 1) * SAMPLES_PER_FRAME
        assert a >= self._base, (a, self._base)
        if self._chunks and self._base + len(self._buf) < min(b, self.samples):
            self._buf = np.concatenate([self._buf, *self._chunks])
            self._chunks = []
        out = np.zeros(SAMPLES_PER_FRAME, np.int16)
        chunk = self._buf[a - self._base : b - self._base]
        out[: len(chunk)] = chunk
        drop = min(b - self._base, len(self._buf))
        self._buf = self._buf[drop:]
        self._base += drop
        return out

    @property
    def duration(self) -> float:
        """Seconds of the segment's audio received (the lead not counted)."""
        return max(self.samples - self.lead, 0) / OUTPUT_RATE

    def position(self, frames: int) -> float:
        """Seconds of the segment's audio played after `frames` of its frames."""
        played = min(frames * SAMPLES_PER_FRAME, self.samples) - self.lead
        return max(played, 0) / OUTPUT_RATE


class Playout:
    """Segments, front end and output audio of one session (see module doc)."""

    def __init__(
        self,
        model_lookahead: int,
        jitter_ms: float,
        front: AudioFrontEnd,
        exact_start: bool = False,
    ) -> None:
        self.front = front
        self.model_lookahead = model_lookahead
        self.jitter_s = jitter_ms / 1000.0
        self.exact_start = exact_start  # segments start between frames (module doc)
        self._to48 = PcmTo48k()
        self._segments: deque[Segment] = deque()  # not fully played
        self._open: Segment | None = None  # receiving audio (not ended)
        self._feeding: deque[Segment] = deque()  # not fully fed to the model
        # frames fed, not played: a model with look-ahead L shows at tick t the input fed at
        # t - L, so the first L ticks play silence (and input frame t plays at tick t)
        self._fed_map: deque[tuple[Segment, int] | None] = deque([None] * model_lookahead)
        self._next_id = 0
        self.next_fed = model_lookahead  # the next input frame the model reads
        self.underruns = 0  # frames of silence inserted because features were late
        self.pending_events: list[Event] = []

    def delay_frames(self, rate: int) -> float:
        """Frames from a segment's first arrival to its first frame (module doc)."""
        hold = resampler_holdback_s(rate, SAMPLE_RATE)
        return 1 + self.front.lookahead + self.model_lookahead + (hold + self.jitter_s) * FPS

    # ------------------------------------------------------------------ input

    def push(self, x: np.ndarray, rate: int, arrival_s: float) -> None:
        """Mono float32 at `rate`, first pushed at session time `arrival_s`."""
        if len(x) == 0:
            return
        seg = self._open
        if seg is None:
            seg = self._open_segment(arrival_s, rate)
        if seg.lead_in:  # the lead of silence goes in with the segment's first samples
            x = np.concatenate([np.zeros(seg.lead_in, np.float32), x])
            seg.lead_in = 0
        self._take(seg, self.front.push_batch(x, rate), self._to48.push(x, rate))

    def _open_segment(self, arrival_s: float, rate: int) -> Segment:
        earliest = max([self.next_fed, *(s.start + s.frames for s in self._segments)])
        exact = arrival_s * FPS + self.delay_frames(rate)  # frames, on the session clock
        lead_in = 0
        if self.exact_start and exact > earliest:
            start = math.floor(exact)
            lead_in = round((exact - start) * rate / FPS)  # input samples of silence
            if lead_in * FPS >= rate:  # rounded up to a whole frame
                start, lead_in = start + 1, 0
        else:
            start = max(math.ceil(exact - 1e-9), earliest)
        seg = Segment(self._next_id, start, lead_in=lead_in)
        seg.lead = lead_in * OUTPUT_RATE // rate  # exact for rates dividing 48 kHz
        self._next_id += 1
        self._open = seg
        self._segments.append(seg)
        self._feeding.append(seg)
        return seg

    def end_segment(self) -> None:
        seg = self._open
        if seg is None:
            return
        self._take(seg, self.front.flush_batch(), self._to48.flush())
        seg.frames = max(seg.made, -(-seg.samples // SAMPLES_PER_FRAME))
        seg.ended = True
        self._open = None

    def clear(self, frame: int) -> None:
        """Barge-in at `frame` (the next frame to play): drop all queued audio; frames
        already fed to the model play silence. Emits playback_finished(interrupted)."""
        for seg in self._segments:
            played = seg.position(seg.played)
            self.pending_events.append(Event(PLAYBACK_FINISHED, seg.id, played, True))
        self._segments.clear()
        self._feeding.clear()
        self._open = None
        self._fed_map = deque(None for _ in self._fed_map)
        self.front.reset()
        self._to48.reset()

    def _take(self, seg: Segment, batch: FrameBatch, pcm48: np.ndarray) -> None:
        for i in range(len(batch.phonemes)):
            seg.features.append(FeatureRow(batch.mel[i], int(batch.phonemes[i]), batch.prosody[i]))
        seg.made += len(batch.phonemes)
        if len(pcm48):
            seg.add(pcm48)

    # ------------------------------------------------------------------ per tick

    def next_input(self) -> FeatureRow | None:
        """The features of input frame `next_fed` (None: silence), advancing it."""
        g = self.next_fed
        self.next_fed += 1
        row, where = None, None
        while self._feeding:
            seg = self._feeding[0]
            if g < seg.start:
                break
            j = g - seg.start
            if seg.ended and j >= seg.frames:
                self._feeding.popleft()
                continue
            audio_in = seg.ended or seg.samples >= (j + 1) * SAMPLES_PER_FRAME
            if seg.features and audio_in:
                row = seg.features.popleft()
                where = (seg, j)
                seg.fed += 1
            elif seg.ended:  # the front end gave fewer frames than the audio lasts
                where = (seg, j)
                seg.fed += 1
            else:  # underrun: this segment and the ones after it move one frame later
                self.underruns += 1
                seg.start += 1
                prev = seg
                for later in list(self._feeding)[1:]:
                    later.start = max(later.start, prev.start + prev.frames)
                    prev = later
            break
        self._fed_map.append(where)
        return row

    def play(self) -> tuple[np.ndarray, list[Event]]:
        """The audio of the next frame to play ((1600,) int16) and its events."""
        where = self._fed_map.popleft()
        events, self.pending_events = self.pending_events, []
        if where is None:
            return np.zeros(SAMPLES_PER_FRAME, np.int16), events
        seg, j = where
        if j == 0:
            events.append(Event(SEGMENT_STARTED, seg.id, 0.0, False))
        pcm = seg.pcm(j)
        seg.played = j + 1
        if seg.ended and j == seg.frames - 1:
            events.append(Event(PLAYBACK_FINISHED, seg.id, seg.duration, False))
            if self._segments and self._segments[0] is seg:
                self._segments.popleft()
        return pcm, events

    @property
    def pending_s(self) -> float:
        """Seconds of ingested audio not yet played (safe to read from another thread:
        the segment list is copied at once)."""
        segs = list(self._segments)
        left = sum(max(s.samples - s.played * SAMPLES_PER_FRAME, 0) for s in segs)
        return left / OUTPUT_RATE
