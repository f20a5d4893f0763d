"""Media files through PyAV: an MP4 writer (H.264 yuv420p + AAC) that takes frames one at
a time, a reader for user video, and audio loading at a requested sample rate."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from stylecast.engine.errors import BackendError, FormatError, InputError
from stylecast.engine.face import FPS

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000  # Hz of the AAC track the writer muxes
AAC_FRAME = 1024  # samples per AAC frame (21.3 ms at 48 kHz)
AUDIO_BITRATE = 128_000  # bits per second of the AAC track
DEFAULT_CRF = 20  # x264 constant rate factor: visually clean at small sizes


def media_error(path: str | Path, what: str, error: Exception) -> InputError:
    """A user-facing error for a media file PyAV could not read."""
    if isinstance(error, FileNotFoundError):
        return InputError(f"{path}: no such file")
    return FormatError(f"{path}: {what} ({error})")


class VideoWriter:
    """Writes an MP4: H.264 yuv420p at `fps`, plus an AAC track when `audio` (float32 mono
    samples at `audio_rate`) is given. Frames are encoded as they come; audio is interleaved
    up to the time of the last frame written, and the rest is written by close()."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: int = FPS,
        audio: np.ndarray | None = None,
        audio_rate: int = AUDIO_RATE,
        crf: int = DEFAULT_CRF,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise InputError(
                f"video size must be positive and even (yuv420p), got {width}x{height}"
            )
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self.frames_written = 0
        self.audio = None if audio is None else np.asarray(audio, np.float32).reshape(-1)
        self.audio_rate = audio_rate
        self.audio_written = 0  # samples handed to the AAC encoder so far
        self.closed = False
        try:
            self.container = av.open(str(self.path), mode="w", format="mp4")
        except (OSError, av.FFmpegError) as e:
            raise InputError(f"{self.path}: cannot open for writing ({e})") from e
        try:
            self.video = self.container.add_stream(
                "libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast"}
            )
            self.video.width = width
            self.video.height = height
            self.video.pix_fmt = "yuv420p"
            self.video.codec_context.time_base = Fraction(1, fps)
            self.sound = None
            if self.audio is not None:
                self.sound = self.container.add_stream("aac", rate=audio_rate, layout="mono")
                self.sound.bit_rate = AUDIO_BITRATE
        except (ValueError, av.FFmpegError) as e:
            self.container.close()
            raise BackendError(
                f"PyAV cannot encode H.264/AAC here ({e}); install the `av` wheel from PyPI, "
                f"which bundles libx264"
            ) from e

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, frame: np.ndarray) -> None:
        """Encode one (height, width, 3) uint8 RGB frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise InputError(
                f"frame must be ({self.height}, {self.width}, 3) uint8 RGB, got "
                f"{frame.shape} {frame.dtype}"
            )
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        picture.pts = self.frames_written
        self.container.mux(self.video.encode(picture))
        self.frames_written += 1
        self.write_audio_until(self.frames_written * self.audio_rate // self.fps)

    def write_audio_until(self, sample: int) -> None:
        """Encode whole AAC frames of audio up to `sample` (or the end of the audio)."""
        if self.audio is None or self.sound is None:
            return
        end = min(sample, len(self.audio))
        while self.audio_written + AAC_FRAME <= end or (
            end == len(self.audio) and self.audio_written < end
        ):
            chunk = self.audio[self.audio_written : self.audio_written + AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.audio_rate
            frame.pts = self.audio_written
            frame.time_base = Fraction(1, self.audio_rate)
            self.container.mux(self.sound.encode(frame))
            self.audio_written += len(chunk)

    def close(self) -> None:
        """Flush the encoders and finish the file. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            self.container.mux(self.video.encode(None))
            if self.sound is not None:
                self.write_audio_until(len(self.audio))
                self.container.mux(self.sound.encode(None))
        finally:
            self.container.close()


class VideoInfo(NamedTuple):
    width: int
    height: int
    fps: float  # average frame rate of the video stream
    frames: int  # as declared by the container (0 when it does not say)
    duration: float  # seconds, as declared by the container
    audio_rate: int  # Hz of the first audio stream, 0 when there is none


def probe(path: str | Path) -> VideoInfo:
    """Stream parameters of a video file, without decoding it."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise FormatError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            audio = container.streams.audio
            rate = stream.average_rate or stream.guessed_rate or 0
            duration = float(container.duration or 0) / av.time_base
            return VideoInfo(
                stream.codec_context.width,
                stream.codec_context.height,
                float(rate),
                int(stream.frames or 0),
                duration,
                int(audio[0].codec_context.sample_rate) if audio else 0,
            )
    except (OSError, av.FFmpegError) as e:
        raise media_error(path, "not a readable video file", e) from e


class VideoReader:
    """Decodes a user's video to RGB frames: `for frame in VideoReader(path)` yields
    (H, W, 3) uint8 arrays. `fps` is the stream's average frame rate."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.container = av.open(str(self.path))
        except (OSError, av.FFmpegError) as e:
            raise media_error(self.path, "not a readable video file", e) from e
        if not self.container.streams.video:
            self.container.close()
            raise FormatError(f"{self.path}: has no video stream (is it an audio file?)")
        self.stream = self.container.streams.video[0]
        rate = self.stream.average_rate or self.stream.guessed_rate
        if not rate or rate <= 0:
            self.container.close()
            raise FormatError(f"{self.path}: the video stream declares no frame rate")
        self.fps = float(rate)
        self.frames = int(self.stream.frames or 0)  # 0 when the container does not say
        if not self.frames and self.container.duration:
            self.frames = round(self.container.duration / av.time_base * self.fps)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for frame in self.container.decode(self.stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise media_error(self.path, "the video could not be decoded", e) from e

    def close(self) -> None:
        self.container.close()


def load_audio(path: str | Path, rate: int = 16_000) -> np.ndarray:
    """Any audio (or video with sound) file PyAV reads -> (N,) float32 mono at `rate` Hz."""
    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as e:
        raise media_error(path, "not a readable audio file", e) from e
    with container:
        if not container.streams.audio:
            raise FormatError(f"{path}: has no audio stream")
        # Planar float at the input's own layout; channels are averaged below (swresample's
        # own downmix scales a centred stereo signal by 0.707 instead of keeping its level).
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(o.to_ndarray().mean(axis=0) for o in resampler.resample(frame))
            chunks.extend(o.to_ndarray().mean(axis=0) for o in resampler.resample(None))
        except av.FFmpegError as e:
            raise media_error(path, "the audio could not be decoded", e) from e
    if not chunks:
        raise FormatError(f"{path}: the audio stream holds no samples")
    return np.concatenate(chunks).astype(np.float32, copy=False)


def fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    """Trim or zero-pad (N,) audio to exactly `samples`."""
    if len(audio) >= samples:
        return audio[:samples]
    return np.concatenate([audio, np.zeros(samples - len(audio), audio.dtype)])
