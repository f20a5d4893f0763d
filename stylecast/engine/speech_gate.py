"""Cutting a continuous microphone stream into speech segments, by loudness.

A microphone never stops sending, but a session plays speech as segments (`end_segment`
lets the last frames of an utterance be made; a new segment re-anchors the playout delay,
so an underrun inside one utterance does not add latency for the rest of the call). The
gate opens when a 20 ms block is louder than `open_db`, pushes the `preroll_s` of audio
before it too (the soft start of a word), and closes `hangover_s` after the level last
exceeded `close_db`; closed, nothing is pushed and the avatar idles.

    gate = SpeechGate()
    for action in gate.feed(pcm, 48_000):     # ("audio", (n, channels) int16) | ("end",)
        ...
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

BLOCK_S = 0.02  # level measured per 20 ms block


@dataclass(frozen=True)
class GateConfig:
    open_db: float = -42.0  # dBFS RMS of a block that opens the gate
    close_db: float = -50.0  # the gate stays open while blocks exceed this (hysteresis)
    hangover_s: float = 0.5  # closes this long after the last loud block
    preroll_s: float = 0.2  # audio before the opening block that is pushed too


class SpeechGate:
    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        self.open = False
        self._quiet_s = 0.0  # seconds since the last block above close_db
        self._preroll: deque[np.ndarray] = deque()  # blocks kept while closed
        self._preroll_n = 0
        self._pending = np.zeros((0, 1), np.int16)  # samples short of a whole block
        self._rate: int | None = None

    def feed(self, pcm: np.ndarray, rate: int) -> list[tuple]:
        """(n,) or (n, channels) int16 at `rate` -> actions, in order."""
        x = np.asarray(pcm, np.int16)
        x = x[:, None] if x.ndim == 1 else x
        if self._rate not in (None, rate) or self._pending.shape[1] != x.shape[1]:
            self._pending = np.zeros((0, x.shape[1]), np.int16)
            self._preroll.clear()
            self._preroll_n = 0
        self._rate = rate
        x = np.concatenate([self._pending, x])
        block = max(int(rate * BLOCK_S), 1)
        whole = len(x) - len(x) % block
        self._pending = x[whole:]
        actions: list[tuple] = []
        for i in range(0, whole, block):
            actions += self._block(x[i : i + block], rate)
        return _merge(actions)

    def _block(self, b: np.ndarray, rate: int) -> list[tuple]:
        c = self.config
        rms = float(np.sqrt(np.mean((b.astype(np.float32) / 32768.0) ** 2)) + 1e-9)
        db = 20.0 * np.log10(rms)
        if not self.open:
            if db < c.open_db:
                self._preroll.append(b)
                self._preroll_n += len(b)
                while self._preroll_n - len(self._preroll[0]) >= c.preroll_s * rate:
                    self._preroll_n -= len(self._preroll.popleft())
                return []
            self.open, self._quiet_s = True, 0.0
            out = [("audio", blk) for blk in self._preroll] + [("audio", b)]
            self._preroll.clear()
            self._preroll_n = 0
            return out
        self._quiet_s = 0.0 if db >= c.close_db else self._quiet_s + len(b) / rate
        if self._quiet_s >= c.hangover_s:
            self.open = False
            return [("audio", b), ("end",)]
        return [("audio", b)]


def _merge(actions: list[tuple]) -> list[tuple]:
    """Consecutive audio actions joined into one push."""
    out: list[tuple] = []
    for a in actions:
        if a[0] == "audio" and out and out[-1][0] == "audio":
            out[-1] = ("audio", np.concatenate([out[-1][1], a[1]]))
        else:
            out.append(a)
    return out
