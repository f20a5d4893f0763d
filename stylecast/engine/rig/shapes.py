"""The 52 ARKit blendshapes, authored procedurally as vertex displacement fields on a
neutral face in the canonical head frame (inter-ocular distance = 1; x = subject's left,
y down, z away from the camera).

Each shape is written as displacements of the landmarks its name is about (lip contours,
lids, brows, irises...), with `spread_shape` carrying them smoothly onto the skin around,
and zero-displacement anchors where a region must stay put. Magnitudes are in inter-ocular
units (1 ~ 63 mm on an adult) and were tuned by looking at the rendered contact sheet.
Upper-face authors: `shapes_upper`; lower face: `shapes_lower`; shared tools: `measure`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from stylecast.engine.face import ARKIT_NAMES
from stylecast.engine.rig.measure import FaceMeasures, JawModel
from stylecast.engine.rig.shapes_lower import jaw_mouth_shapes
from stylecast.engine.rig.shapes_upper import brow_shapes, cheek_nose_shapes, eye_shapes

__all__ = ["JawModel", "author_blendshapes"]

AUTHORS: tuple[Callable[[FaceMeasures], dict[str, np.ndarray]], ...] = (
    eye_shapes,
    brow_shapes,
    cheek_nose_shapes,
    jaw_mouth_shapes,
)


def author_blendshapes(
    neutral: np.ndarray, groups: dict[str, np.ndarray], triangles: np.ndarray
) -> tuple[np.ndarray, JawModel]:
    """All 52 shapes on this neutral: ((52, 478, 3) float32 in ARKIT_NAMES order, jaw).
    triangles: (F, 3) face-mesh triangles (for the lids' neighbouring rings)."""
    face = FaceMeasures(np.asarray(neutral, np.float64), groups, triangles)
    fields: dict[str, np.ndarray] = {}
    for author in AUTHORS:
        fields.update(author(face))
    missing = set(ARKIT_NAMES) - set(fields)
    extra = set(fields) - set(ARKIT_NAMES)
    assert not missing and not extra, (missing, extra)
    basis = np.stack([fields[n] for n in ARKIT_NAMES]).astype(np.float32)
    return basis, face.jaw
