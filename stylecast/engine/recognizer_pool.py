"""Phone recognizers in a process of their own, so that decoding does not hold our GIL.

pocketsphinx decodes in C *holding Python's GIL* (~1.5 ms of every 33 ms of audio per
session, up to ~7 ms for one call): while it runs, every other thread of the process (the
render threads' Python half, the event loop that hands frames out) waits. A real-time
scheduler therefore runs all its sessions' recognizers in ONE child process and talks to
it over a pipe; the worker thread waits for each answer in `os.read`, which releases the
GIL, so the renders and the event loop run meanwhile (docs/engine.md, "Stalls").

    pool = RecognizerPool(rt_priority=10)       # the child starts on first use (or start())
    rec = pool.recognizer(lookahead=2)          # a RemoteRecognizer: PhoneRecognizer's API
    ids = rec.push(samples)                     # the same ids an in-process one gives
    ids = rec.flush(n_frames); rec.reset(); rec.close()
    pool.close()                                # also at interpreter exit

The child runs the very same `PhoneRecognizer` on the very same calls, so the ids are
identical (tested). Protocol (little-endian; no pickle, nothing but numbers and bytes):
a request is the header `<BIiI` (op, slot, argument, payload bytes) and a float32 payload
(push); the answer is `<BI` (status, payload bytes) and int64 ids, or, with status 1, a
UTF-8 error message. If the child dies, the calls that were using it raise BackendError
(the sessions using it stop with that reason) and the next new recognizer starts a fresh
child; spare recognizers that hold no audio move to the new child silently.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import weakref

import numpy as np

from stylecast.engine.errors import BackendError
from stylecast.engine.recognizer import PhoneRecognizer, RecognizerConfig

log = logging.getLogger(__name__)

REQUEST = struct.Struct("<BIiI")  # op, slot, argument, payload bytes
ANSWER = struct.Struct("<BI")  # status (0 ok, 1 error), payload bytes
OPEN, PUSH, FLUSH, RESET, CLOSE = range(5)  # ops; OPEN's argument is the look-ahead
OK, ERROR = 0, 1
MAX_PAYLOAD = 64 << 20  # bytes: 1000 s of 16 kHz float32 in one push; more is refused


def _read_exact(fd: int, n: int) -> bytes:
    """n bytes from fd (b"" if it ends first)."""
    parts, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            return b""
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class RecognizerPool:
    """One child process holding the phone recognizers of many sessions (module doc).
    Thread-safe: calls from several threads take turns (one request in flight)."""

    def __init__(
        self, config: RecognizerConfig | None = None, rt_priority: int | None = None
    ) -> None:
        self.config = config or RecognizerConfig()
        self.rt_priority = rt_priority  # SCHED_RR priority of the child (None: ordinary)
        self.generation = 0  # bumped at every (re)start: recognizers of older ones are stale
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._next_slot = 0
        self._closed = False
        self._finalizer: weakref.finalize | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child now (it loads pocketsphinx's models once); a no-op if running."""
        with self._lock:
            self._ensure()

    def recognizer(self, lookahead: int) -> RemoteRecognizer:
        """A fresh recognizer with this look-ahead (video frames), in the child."""
        return RemoteRecognizer(self, lookahead)

    def close(self) -> None:
        """Stop the child (idempotent); later calls raise BackendError."""
        with self._lock:
            self._closed = True
            self._stop()

    # ------------------------------------------------------------ internals

    def _ensure(self) -> None:
        """(Under the lock.) A running child, started if there is none."""
        if self._closed:
            raise BackendError("the phone recognizer pool was closed")
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            self._stop()
        cmd = [
            sys.executable,
            "-m",
            "stylecast.engine.recognizer_pool",
            "--config",
            json.dumps(dataclasses.asdict(self.config)),
        ]
        if self.rt_priority is not None:
            cmd += ["--rt-priority", str(self.rt_priority)]
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as e:
            raise BackendError(f"could not start the phone recognizer process ({e})") from e
        self.generation += 1
        self._next_slot = 0
        self._finalizer = weakref.finalize(self, _terminate, self._proc)
        # the child answers a ping once its models are loaded (or fails to)
        self._call_locked(RESET, 0xFFFFFFFF, 0, b"")

    def _stop(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the pipes, waits for (or kills) the child
            self._finalizer = None
        self._proc = None

    def _open(self, lookahead: int) -> tuple[int, int]:
        """A new slot in the running child -> (generation, slot)."""
        with self._lock:
            self._ensure()
            slot = self._next_slot
            self._next_slot += 1
            self._call_locked(OPEN, slot, lookahead, b"")
            return self.generation, slot

    def _call(self, generation: int, op: int, slot: int, arg: int, payload: bytes) -> bytes:
        with self._lock:
            if generation != self.generation or self._proc is None:
                raise _Stale
            return self._call_locked(op, slot, arg, payload)

    def _call_locked(self, op: int, slot: int, arg: int, payload: bytes) -> bytes:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            _write_all(proc.stdin.fileno(), REQUEST.pack(op, slot, arg, len(payload)) + payload)
            head = _read_exact(proc.stdout.fileno(), ANSWER.size)
            if head:
                status, n = ANSWER.unpack(head)
                body = _read_exact(proc.stdout.fileno(), n)
                if len(body) == n:
                    if status == OK:
                        return body
                    raise BackendError(f"the phone recognizer process: {body.decode()}")
        except OSError:
            pass  # a broken pipe: the child is gone, said below
        code = proc.poll()
        if code is None:
            proc.kill()
            code = proc.wait()
        self._stop()
        raise _Died(
            f"the phone recognizer process (pid {proc.pid}) died (exit code {code}); the "
            "sessions that were using it lost their phone recognition state and stop; new "
            "sessions get a fresh process"
        )


class _Stale(Exception):
    """A recognizer's slot belongs to a child that is gone."""


class _Died(BackendError):
    """The child died during this call."""


def _terminate(proc: subprocess.Popen) -> None:
    """Close the child's stdin (it exits on EOF), then wait; kill it if it hangs."""
    for f in (proc.stdin, proc.stdout):
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RemoteRecognizer:
    """`PhoneRecognizer`'s interface (push / flush / reset / lookahead) over a pool's child.
    Not thread-safe on its own (one session's front end uses it)."""

    def __init__(self, pool: RecognizerPool, lookahead: int) -> None:
        assert lookahead >= 0
        self.pool = pool
        self.lookahead = lookahead  # video frames
        self._generation, self._slot = pool._open(lookahead)
        self._holds_audio = False  # pushed since the last flush/reset (lost if the child dies)
        self._closed = False

    def push(self, samples: np.ndarray) -> np.ndarray:
        """(n,) float32 16 kHz -> (k,) int64 ids of the frames it completes."""
        x = np.ascontiguousarray(samples, np.float32)
        if x.nbytes > MAX_PAYLOAD:  # the front end pushes <= 0.2 s at a time
            raise BackendError(f"a push of {len(x)} samples is too long for one call")
        out = self._call(PUSH, 0, x.astype("<f4", copy=False).tobytes())
        self._holds_audio = True
        return out

    def flush(self, n_frames: int) -> np.ndarray:
        """End of segment: ids of the remaining frames up to n_frames - 1."""
        out = self._call(FLUSH, int(n_frames), b"")
        self._holds_audio = False
        return out

    def reset(self) -> None:
        """Barge-in: a fresh recognizer (in a new child, if the old one died)."""
        self._holds_audio = False
        self._call(RESET, 0, b"")

    def close(self) -> None:
        """Free the slot in the child (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(_Stale, BackendError):
            self.pool._call(self._generation, CLOSE, self._slot, 0, b"")

    def _call(self, op: int, arg: int, payload: bytes) -> np.ndarray:
        if self._closed:
            raise BackendError("this phone recognizer was closed")
        try:
            body = self.pool._call(self._generation, op, self._slot, arg, payload)
        except (_Stale, _Died) as e:
            if self._holds_audio:
                if isinstance(e, _Died):
                    raise
                raise BackendError(
                    "the phone recognizer process this session used has died; its "
                    "recognition state was lost"
                ) from None
            # nothing was lost (a spare, or between segments): move to the current child
            self._generation, self._slot = self.pool._open(self.lookahead)
            body = self.pool._call(self._generation, op, self._slot, arg, payload)
        return np.frombuffer(body, "<i8").astype(np.int64)


# ---------------------------------------------------------------- the child


def _set_policy(rt_priority: int | None) -> None:
    """This process's scheduling: SCHED_RR at rt_priority, or the ordinary one (None)."""
    try:
        if rt_priority is None:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        else:
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(rt_priority))
    except OSError as e:
        log.warning("real-time priority %s refused (%s)", rt_priority, e)


def serve(
    config: RecognizerConfig, fd_in: int = 0, fd_out: int = 1, rt_priority: int | None = None
) -> None:
    """The child's loop: requests on fd_in, answers on fd_out, until EOF. Decoding runs at
    `rt_priority` (SCHED_RR; None: the ordinary scheduler); loading a decoder's models (a
    new slot, ~0.2-0.3 s of CPU) runs under the ordinary scheduler, so that a session
    joining does not take a CPU from the live sessions' real-time threads for that long."""
    recognizers: dict[int, PhoneRecognizer] = {}
    while True:
        head = _read_exact(fd_in, REQUEST.size)
        if not head:
            return
        op, slot, arg, n = REQUEST.unpack(head)
        if n > MAX_PAYLOAD:
            _write_all(fd_out, ANSWER.pack(ERROR, 0))
            return
        payload = _read_exact(fd_in, n)
        if len(payload) != n:
            return
        try:
            out = np.zeros(0, np.int64)
            if op == OPEN:
                if rt_priority is not None:
                    _set_policy(None)
                try:
                    recognizers[slot] = PhoneRecognizer(arg, config)
                finally:
                    if rt_priority is not None:
                        _set_policy(rt_priority)
            elif op == PUSH:
                out = recognizers[slot].push(np.frombuffer(payload, "<f4").astype(np.float32))
            elif op == FLUSH:
                out = recognizers[slot].flush(arg)
            elif op == RESET:
                if slot in recognizers:
                    recognizers[slot].reset()
                elif not recognizers and slot == 0xFFFFFFFF:  # the start-up ping
                    PhoneRecognizer(0, config)  # load the models once, fail early
                    if rt_priority is not None:
                        _set_policy(rt_priority)  # decoding from now on
            elif op == CLOSE:
                recognizers.pop(slot, None)
            else:
                raise ValueError(f"unknown op {op}")
            body = np.asarray(out, "<i8").tobytes()
            _write_all(fd_out, ANSWER.pack(OK, len(body)) + body)
        except Exception as e:  # answered, the child goes on
            msg = f"{type(e).__name__}: {e}".encode()
            _write_all(fd_out, ANSWER.pack(ERROR, len(msg)) + msg)


def main() -> None:
    ap = argparse.ArgumentParser(description="stylecast's phone recognizer process")
    ap.add_argument("--config", required=True, help="RecognizerConfig as JSON")
    ap.add_argument("--rt-priority", type=int, default=None)
    args = ap.parse_args()
    config = RecognizerConfig(**json.loads(args.config))
    fd_in, fd_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    serve(config, fd_in, fd_out, args.rt_priority)


if __name__ == "__main__":
    main()
