"""Render the rig's contact sheet: every ARKit blendshape at weight 1 on an avatar.

    python scripts/contact_sheet.py [--avatar default] [-o docs/rig-contact-sheet.png]
    python scripts/contact_sheet.py --poses -o /tmp/poses.png   # pose extremes instead

Each tile is the face region of a 512 px render by stylecast.engine.render, labelled with
the shape's name. mouthClose is shown with jawOpen = 1 as well (alone it has nothing to
close). The first tile is the neutral face (all weights 0).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import ARKIT_NAMES, INDEX, N_EXPR
from stylecast.engine.render import Renderer

TILE = 200  # tile side, pixels
COLUMNS = 8


def face_box(avatar, margin: float = 0.15) -> tuple[int, int, int]:
    """(x0, y0, side) of a square around the face in render pixels."""
    xy = avatar.landmarks[:468, :2]
    c = 0.5 * (xy.min(0) + xy.max(0))
    side = int((xy.max(0) - xy.min(0)).max() * (1 + margin))
    x0, y0 = (c - side / 2).astype(int)
    return max(x0, 0), max(y0, 0), side


def tile(frame: np.ndarray, box: tuple[int, int, int], label: str) -> np.ndarray:
    x0, y0, side = box
    crop = np.ascontiguousarray(frame[y0 : y0 + side, x0 : x0 + side])
    t = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA)
    cv2.rectangle(t, (0, TILE - 20), (TILE, TILE), (0, 0, 0), -1)
    cv2.putText(
        t, label, (4, TILE - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA
    )
    return t


def sheet(tiles: list[np.ndarray]) -> np.ndarray:
    rows = -(-len(tiles) // COLUMNS)
    out = np.full((rows * TILE, COLUMNS * TILE, 3), 40, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        out[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = t
    return out


def shape_tiles(renderer: Renderer, box) -> list[np.ndarray]:
    pose = np.zeros(6, np.float32)
    tiles = [tile(renderer.render(np.zeros(N_EXPR, np.float32), pose), box, "neutral")]
    for name in ARKIT_NAMES:
        e = np.zeros(N_EXPR, np.float32)
        e[INDEX[name]] = 1.0
        label = name
        if name == "mouthClose":
            e[INDEX["jawOpen"]] = 1.0
            label = "mouthClose+jawOpen"
        tiles.append(tile(renderer.render(e, pose), box, label))
    return tiles


def pose_tiles(renderer: Renderer) -> list[np.ndarray]:
    full = (0, 0, renderer.size)
    tiles = []
    talk = np.zeros(N_EXPR, np.float32)
    talk[INDEX["jawOpen"]] = 0.5
    for label, pose in (
        ("rest", (0, 0, 0)),
        ("yaw +25", (0, 25, 0)),
        ("yaw -25", (0, -25, 0)),
        ("pitch +15", (15, 0, 0)),
        ("pitch -15", (-15, 0, 0)),
        ("roll +15", (0, 0, 15)),
        ("yaw+25 pitch-15", (-15, 25, 0)),
        ("yaw-25 jaw .5", (0, -25, 0)),
    ):
        p = np.zeros(6, np.float32)
        p[:3] = np.radians(pose)
        e = talk if "jaw" in label else np.zeros(N_EXPR, np.float32)
        tiles.append(tile(renderer.render(e, p), full, label))
    return tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default="default")
    ap.add_argument("-o", "--output", default="docs/rig-contact-sheet.png")
    ap.add_argument("--poses", action="store_true", help="pose extremes instead of shapes")
    args = ap.parse_args()
    avatar = load_avatar(args.avatar)
    with Renderer(avatar, size=512) as renderer:
        box = face_box(avatar)
        tiles = pose_tiles(renderer) if args.poses else shape_tiles(renderer, box)
    out = sheet(tiles)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    # Highest PNG compression: the sheet is committed, keep it around 1 MB.
    cv2.imwrite(args.output, cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.output} ({len(tiles)} tiles)")


if __name__ == "__main__":
    main()
