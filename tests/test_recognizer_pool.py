"""engine/recognizer_pool.py: recognizers in a child process give exactly the in-process
ids; the child's death is a clear error for the sessions that used it and the pool comes
back for new ones; close() stops the child."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from stylecast.engine.audio import AudioFrontEnd
from stylecast.engine.errors import BackendError
from stylecast.engine.recognizer import PhoneRecognizer
from stylecast.engine.recognizer_pool import RecognizerPool
from tests.test_audio import speechlike


@pytest.fixture()
def pool():
    p = RecognizerPool()
    yield p
    p.close()


def push_in_chunks(rec, x: np.ndarray, sizes) -> list[int]:
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out += rec.push(x[i : i + n]).tolist()
        i, k = i + n, k + 1
    return out


def test_remote_ids_equal_the_in_process_ones(pool):
    x = speechlike(2.5, seed=7)
    local, remote = PhoneRecognizer(2), pool.recognizer(2)
    assert remote.lookahead == 2 and pool.pid is not None and pool.pid != os.getpid()
    for sizes in ([320], [1, 999, 4000]):
        a = push_in_chunks(local, x, sizes) + local.flush(75).tolist()
        b = push_in_chunks(remote, x, sizes) + remote.flush(75).tolist()
        assert a == b and len(a) == 75 and len(set(a)) > 3
    # reset mid-segment: both start over alike
    local.push(x[:5000])
    remote.push(x[:5000])
    local.reset()
    remote.reset()
    assert local.push(x).tolist() == remote.push(x).tolist()


def test_a_front_end_over_the_pool_gives_the_same_frames(pool):
    x = speechlike(2.0, seed=2)
    a = AudioFrontEnd(phoneme_lookahead=2, mel=False)
    b = AudioFrontEnd(phoneme_lookahead=2, mel=False, recognizer=pool.recognizer(2))
    fa = a.push(x, 16_000) + a.flush()
    fb = b.push(x, 16_000) + b.flush()
    assert [f.phoneme for f in fa] == [f.phoneme for f in fb]
    assert [f.index for f in fa] == [f.index for f in fb]


def test_a_dead_child_is_a_clear_error_and_the_pool_comes_back(pool):
    x = speechlike(1.0, seed=3)
    busy, spare = pool.recognizer(2), pool.recognizer(2)
    busy.push(x)  # holds audio
    old = pool.pid
    os.kill(old, signal.SIGKILL)
    with pytest.raises(BackendError, match="died"):
        busy.push(x)
    with pytest.raises(BackendError, match="died"):
        busy.push(x)  # it stays failed (its state is gone)
    # a recognizer that held nothing moves to a fresh child; new ones work too
    assert spare.push(x).size > 0 and pool.pid not in (None, old)
    fresh = pool.recognizer(2)
    assert fresh.push(x).tolist() == PhoneRecognizer(2).push(x).tolist()


def test_close_stops_the_child_and_is_idempotent():
    pool = RecognizerPool()
    rec = pool.recognizer(1)
    pid = pool.pid
    rec.close()
    rec.close()
    pool.close()
    pool.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone (and reaped)
    with pytest.raises(BackendError, match="closed"):
        pool.recognizer(1)
