"""training/lip_study.py: the lip numbers of the paired runs, on made-up motion."""

import numpy as np
import pytest

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import INDEX
from stylecast.training.lip_study import lip_summary
from stylecast.training.timeline import Phone


@pytest.fixture(scope="module")
def rig():
    return load_avatar("default").rig


def _speech(frames: int = 60) -> tuple[np.ndarray, tuple]:
    """Open jaw except at the /m/ (0.4-0.5 s = frames 12-14), where the lips shut."""
    expr = np.zeros((frames, 52), np.float32)
    expr[:, INDEX["jawOpen"]] = 0.3
    expr[12:15, INDEX["jawOpen"]] = 0.0
    phones = (Phone("SIL", 0.0, 0.4), Phone("M", 0.4, 0.5), Phone("AA", 0.5, 2.0))
    return expr, phones


def test_truth_scores_itself_closed_with_zero_distance(rig):
    expr, phones = _speech()
    s = lip_summary([expr], [expr], [phones], rig)
    assert s.bilabials == 1 and s.closed == 1.0 and s.m_lvd_mm == 0.0
    assert s.frames_closed == pytest.approx(3 / 60)
    assert s.median_min_gap_mm == pytest.approx(2.27, abs=0.1)  # the rig's rest gap


def test_a_mouth_that_never_shuts_scores_no_closure(rig):
    truth, phones = _speech()
    averaged = np.repeat(truth.mean(0, keepdims=True), len(truth), axis=0)  # the mean mouth
    s = lip_summary([averaged], [truth], [phones], rig)
    assert s.closed == 0.0 and s.frames_closed == 0.0
    assert s.m_lvd_mm > 0.1 and s.median_min_gap_mm > 5.0
    late = np.roll(truth, 6, axis=0)  # the closure 200 ms late: outside the +-1 frame window
    assert lip_summary([late], [truth], [phones], rig).closed == 0.0
