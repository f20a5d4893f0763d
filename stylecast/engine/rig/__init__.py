"""The ARKit-52 face rig on MediaPipe's 478-point face mesh.

    rig = FaceRig.from_portrait(canonical_points, topology)   # at avatar build time
    rig = avatar.rig                                          # at run time (from a bundle)
    verts = rig.deform(expr)          # (478, 3) canonical: neutral + sum_k expr[k] basis[k]

Canonical head frame, rest pose and projection: see `stylecast.engine.rig.neutral`.
Blendshape authoring: `stylecast.engine.rig.shapes`. Topology: `.topology`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stylecast.engine.face import N_EXPR
from stylecast.engine.rig.neutral import RestPose, close_mouth, fit_rest_pose
from stylecast.engine.rig.shapes import JawModel, author_blendshapes
from stylecast.engine.rig.topology import GROUP_NAMES, Topology

N_POINTS = 478

__all__ = [
    "GROUP_NAMES",
    "N_POINTS",
    "FaceRig",
    "JawModel",
    "RestPose",
    "Topology",
    "fit_rest_pose",
]


@dataclass(frozen=True)
class FaceRig:
    """A neutral face and its 52 blendshapes, in the canonical head frame.

    neutral: (478, 3) float32, the identity's neutral face (inter-ocular distance 1).
    basis: (52, 478, 3) float32, displacement of each point at weight 1, ARKIT_NAMES order.
    jaw: the rigid jaw (hinge, opening angle) that carries lower teeth and tongue.
    triangles: (852, 3) int32 face-mesh triangles over points 0..467 (holes at the eyes
        and mouth).
    groups: named int32 index arrays (topology.GROUP_NAMES).
    """

    neutral: np.ndarray
    basis: np.ndarray
    jaw: JawModel
    triangles: np.ndarray
    groups: dict[str, np.ndarray]

    @classmethod
    def from_portrait(cls, canonical: np.ndarray, topology: Topology) -> FaceRig:
        """Build the rig for a portrait's canonical landmarks (478, 3): the identity neutral
        is the portrait with its lips closed and smile relaxed, then the 52 shapes are
        authored on that neutral."""
        neutral = close_mouth(canonical, topology.groups)
        basis, jaw = author_blendshapes(neutral, topology.groups, topology.triangles)
        return cls(
            neutral=neutral.astype(np.float32),
            basis=basis,
            jaw=jaw,
            triangles=topology.triangles,
            groups=topology.groups,
        )

    @property
    def basis_matrix(self) -> np.ndarray:
        """(1434, 52) float32: basis with points flattened, so deform = neutral + B @ expr
        (point-major: row 3*i + axis). What a least-squares fitter solves against."""
        return self.basis.reshape(N_EXPR, -1).T

    def deform(self, expr: np.ndarray) -> np.ndarray:
        """(52,) weights -> (478, 3) float32 canonical points. (B, 52) -> (B, 478, 3)."""
        e = np.asarray(expr, np.float32)
        if e.shape[-1] != N_EXPR:
            raise ValueError(f"expected expression weights of shape (..., 52), got {e.shape}")
        flat = e @ self.basis.reshape(N_EXPR, -1)  # (..., 1434)
        return self.neutral + flat.reshape(*e.shape[:-1], N_POINTS, 3)

    def stable_points(self, count: int = 60) -> np.ndarray:
        """Indices of the `count` mesh points (of 0..467) that the 52 shapes move least:
        forehead, nose bridge, temples. What a rigid pose alignment should use."""
        motion = np.linalg.norm(self.basis[:, :468], axis=2).sum(0)  # (468,)
        return np.sort(np.argsort(motion, kind="stable")[:count]).astype(np.int32)
