"""Prometheus metrics in the text exposition format (version 0.0.4), written here: a few
counters, gauges and histograms are all the server needs, so no client library.

    metrics = Metrics()
    metrics.frames_sent.inc(kind="video")
    metrics.latency.observe(0.012)
    text = metrics.render()          # served at GET /v1/metrics
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence

LabelKey = tuple[tuple[str, str], ...]
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.033, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0)


def _key(labels: dict[str, str]) -> LabelKey:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt_labels(key: LabelKey, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = key + extra
    if not items:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
    return "{" + body + "}"


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str) -> None:
        self.name = name
        self.help = help
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self._values: dict[LabelKey, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        assert amount >= 0, amount
        key = _key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(_key(labels), 0.0)

    def lines(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_fmt_labels(k)} {_num(v)}" for k, v in items]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        with self._lock:
            self._values[_key(labels)] = float(value)

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        key = _key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) - amount


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # last: +Inf
        self._sum = 0.0
        self._n = 0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value
            self._n += 1

    @property
    def count(self) -> int:
        return self._n

    def lines(self) -> list[str]:
        with self._lock:
            counts, total, n = list(self._counts), self._sum, self._n
        out, running = [], 0
        for le, c in zip((*self.buckets, float("inf")), counts, strict=True):
            running += c
            bound = "+Inf" if le == float("inf") else repr(le)
            out.append(f"{self.name}_bucket{_fmt_labels((), (('le', bound),))} {running}")
        out.append(f"{self.name}_sum {total!r}")
        out.append(f"{self.name}_count {n}")
        return out


class Metrics:
    """Everything /v1/metrics shows."""

    def __init__(self) -> None:
        p = "stylecast_"
        self.sessions = Gauge(p + "sessions", "Live streaming sessions (WebSocket and WebRTC).")
        self.sessions_total = Counter(p + "sessions_total", "Sessions started, by transport.")
        self.refused = Counter(p + "sessions_refused_total", "Sessions refused, by reason.")
        self.frames_sent = Counter(p + "frames_sent_total", "Media messages sent, by kind.")
        self.frames_dropped = Counter(
            p + "frames_dropped_total",
            "Video frames not sent, by where: engine (slow consumer), send (slow client), "
            "overload (not drawn).",
        )
        self.protocol_errors = Counter(
            p + "protocol_errors_total", "Error events sent for client messages, by code."
        )
        self.uploads = Counter(p + "uploads_total", "Uploads, by kind and result.")
        self.latency = Histogram(
            p + "frame_latency_seconds",
            "From a frame being made by the engine to its last message leaving the server.",
        )
        self.speech_latency = Histogram(
            p + "speech_start_latency_seconds",
            "From the first audio of a segment arriving to the segment's first frame sent.",
        )

    def all(self) -> list[_Metric]:
        return [v for v in vars(self).values() if isinstance(v, _Metric)]

    def render(self) -> str:
        lines: list[str] = []
        for m in self.all():
            lines += m.header() + m.lines()
        return "\n".join(lines) + "\n"
