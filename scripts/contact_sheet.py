"""Render the rig's contact sheet: every ARKit blendshape at weight 1 on an avatar.

    python scripts/contact_sheet.py [--avatar default] [-o docs/rig-contact-sheet.png]
    python scripts/contact_sheet.py --poses -o docs/yaw-pitch-sheet.jpg
    python scripts/contact_sheet.py --closeups -o docs/render-closeups.png
    python scripts/contact_sheet.py --fixes --before f17d447 -o docs/render-fixes.png

Each tile is the face region of a 512 px render by stylecast.engine.render, labelled with
the shape's name. mouthClose is shown with jawOpen = 1 as well (alone it has nothing to
close). The first tile is the neutral face (all weights 0). --poses: whole frames over a
grid of yaw -25..25 deg by pitch -15..15 deg (and roll, and turns while talking);
--closeups: the mouth and the eyes magnified (jaw, bilabial closure, tongue, blinks);
--fixes: the renderer's known trouble spots (nodding hair, the far jaw, the chin under
mouthClose, barely parted teeth, the interior's edges), with --before REV the same shots
by the renderer and default avatar of git revision REV above them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from stylecast.engine.avatar import load_avatar
from stylecast.engine.face import ARKIT_NAMES, INDEX, N_EXPR
from stylecast.engine.render import Renderer

TILE = 200  # tile side, pixels
COLUMNS = 8
POSE_TILE = 256  # whole 512 px frames, halved
CLOSEUP_TILE = 340  # the mouth magnified 2x, the eyes 1.4x


def face_box(avatar, margin: float = 0.15) -> tuple[int, int, int]:
    """(x0, y0, side) of a square around the face in render pixels."""
    xy = avatar.landmarks[:468, :2]
    c = 0.5 * (xy.min(0) + xy.max(0))
    side = int((xy.max(0) - xy.min(0)).max() * (1 + margin))
    x0, y0 = (c - side / 2).astype(int)
    return max(x0, 0), max(y0, 0), side


def tile(frame: np.ndarray, box: tuple[int, int, int], label: str, size: int = TILE) -> np.ndarray:
    x0, y0, side = box
    crop = np.ascontiguousarray(frame[y0 : y0 + side, x0 : x0 + side])
    interp = cv2.INTER_AREA if size <= side else cv2.INTER_CUBIC
    t = cv2.resize(crop, (size, size), interpolation=interp)
    cv2.rectangle(t, (0, size - 20), (size, size), (0, 0, 0), -1)
    cv2.putText(
        t, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA
    )
    return t


def sheet(tiles: list[np.ndarray], columns: int = COLUMNS) -> np.ndarray:
    rows = -(-len(tiles) // columns)
    n = tiles[0].shape[0]
    out = np.full((rows * n, columns * n, 3), 40, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * n : (r + 1) * n, c * n : (c + 1) * n] = t
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


def _pose(pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> np.ndarray:
    p = np.zeros(6, np.float32)
    p[:3] = np.radians([pitch, yaw, roll])
    return p


def _expr(**weights: float) -> np.ndarray:
    e = np.zeros(N_EXPR, np.float32)
    for name, w in weights.items():
        e[INDEX[name]] = w
    return e


def pose_tiles(renderer: Renderer) -> list[np.ndarray]:
    """Rows of pitch -15, 0, +15 by yaw -25..25, then roll and turns while talking."""
    full = (0, 0, renderer.size)
    tiles = []
    for pitch in (-15, 0, 15):
        for yaw in (-25, -12, 0, 12, 25):
            label = f"yaw {yaw:+d} pitch {pitch:+d}"
            frame = renderer.render(_expr(), _pose(pitch, yaw))
            tiles.append(tile(frame, full, label, POSE_TILE))
    talk = _expr(jawOpen=0.5)
    for label, e, p in (
        ("roll -15", _expr(), _pose(roll=-15)),
        ("roll +15", _expr(), _pose(roll=15)),
        ("yaw -25 jaw .5", talk, _pose(yaw=-25)),
        ("yaw +25 pitch -15 jaw .5", talk, _pose(-15, 25)),
        ("yaw -25 blink", _expr(eyeBlinkLeft=1, eyeBlinkRight=1), _pose(yaw=-25)),
    ):
        tiles.append(tile(renderer.render(e, p), full, label, POSE_TILE))
    return tiles


def closeup_tiles(renderer: Renderer) -> list[np.ndarray]:
    """The mouth and the eyes magnified: the interior, closures and blinks."""
    a = renderer.avatar
    s = renderer.size / a.size
    iod = a.rest.scale * s
    mouth = a.landmarks[[13, 14], :2].mean(0) * s
    eye = a.landmarks[[468, 473], :2].mean(0) * s
    boxes = {  # (x0, y0, side) in render pixels
        "mouth": (*(mouth - [0.7 * iod, 0.55 * iod]).astype(int), int(1.4 * iod)),
        "eyes": (*(eye - [1.0 * iod, 0.75 * iod]).astype(int), int(2.0 * iod)),
    }
    shots = [
        ("mouth", "jaw .25", _expr(jawOpen=0.25)),
        ("mouth", "jaw .5", _expr(jawOpen=0.5)),
        ("mouth", "jaw 1", _expr(jawOpen=1)),
        ("mouth", "jaw .3 + close .3 (b/m/p)", _expr(jawOpen=0.3, mouthClose=0.3)),
        ("mouth", "jaw .6 tongueOut .6", _expr(jawOpen=0.6, tongueOut=0.6)),
        ("mouth", "tongueOut", _expr(tongueOut=1)),
        ("mouth", "funnel + jaw .4", _expr(mouthFunnel=1, jawOpen=0.4)),
        ("mouth", "smile + jaw .4", _expr(mouthSmileLeft=1, mouthSmileRight=1, jawOpen=0.4)),
        ("eyes", "eyes open", _expr()),
        ("eyes", "blink .5", _expr(eyeBlinkLeft=0.5, eyeBlinkRight=0.5)),
        ("eyes", "blink 1", _expr(eyeBlinkLeft=1, eyeBlinkRight=1)),
        ("eyes", "look left", _expr(eyeLookOutLeft=1, eyeLookInRight=1)),
    ]
    return [
        tile(renderer.render(e, _pose()), boxes[where], label, CLOSEUP_TILE)
        for where, label, e in shots
    ]


def fix_shots(avatar) -> list[tuple[str, np.ndarray, np.ndarray, tuple, bool]]:
    """(label, expr, pose, box (x0, y0, side) in 512 px render pixels, nearest) for each
    trouble spot; nearest: magnify without smoothing (to show aliasing)."""
    iod = avatar.rest.scale * 512 / avatar.size
    mouth = avatar.landmarks[[13, 14], :2].mean(0) * 512 / avatar.size
    chin = avatar.landmarks[152, :2] * 512 / avatar.size

    def around(centre, side):
        return (*(np.asarray(centre) - side / 2).astype(int), int(side))

    return [
        ("hair, pitch +15", _expr(), _pose(pitch=15), (130, 0, 190), False),
        ("far jaw, yaw +25", _expr(), _pose(yaw=25), (250, 230, 200), False),
        (
            "chin, jaw 1 + mouthClose 1",
            _expr(jawOpen=1, mouthClose=1),
            _pose(),
            around((mouth[0], 0.5 * (mouth[1] + chin[1]) + 0.25 * iod), 1.5 * iod),
            False,
        ),
        ("teeth, jaw .12", _expr(jawOpen=0.12), _pose(yaw=5), around(mouth, 0.8 * iod), True),
        (
            "edges, jaw .6 tongueOut .5",
            _expr(jawOpen=0.6, tongueOut=0.5),
            _pose(yaw=10),
            around(mouth + np.array([0.1, 0.25]) * iod, 0.55 * iod),
            True,
        ),
    ]


# Renders the shots with another revision's renderer and default avatar (only the public
# API that every revision has: load_avatar, Renderer(avatar, size).render).
_BEFORE = """
import sys
import numpy as np
from stylecast.engine.avatar import load_avatar
from stylecast.engine.render import Renderer
shots = np.load(sys.argv[1])
with Renderer(load_avatar("default"), size=512) as r:
    frames = [r.render(e, p) for e, p in zip(shots["expr"], shots["pose"])]
np.save(sys.argv[2], np.stack(frames))
"""


def render_before(revision: str, expr: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(B, 512, 512, 3) frames rendered by git revision `revision` (exported to a temporary
    folder with git archive; run in a child process)."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "archive", revision], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        shots, frames = Path(tmp) / "shots.npz", Path(tmp) / "frames.npy"
        np.savez(shots, expr=expr, pose=pose)
        subprocess.run(
            [sys.executable, "-c", _BEFORE, str(shots), str(frames)],
            cwd=tree,
            env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
            check=True,
        )
        return np.load(frames)


def fix_tiles(renderer: Renderer, before: str | None) -> list[np.ndarray]:
    """The trouble spots as rendered now (a row), with --before: that revision's row above."""
    shots = fix_shots(renderer.avatar)
    now = [renderer.render(e, p) for _, e, p, _, _ in shots]
    rows = [("", now)]
    if before:
        expr = np.stack([e for _, e, _, _, _ in shots])
        pose = np.stack([p for _, _, p, _, _ in shots])
        rows = [(f"{before}: ", list(render_before(before, expr, pose))), ("now: ", now)]
    tiles = []
    for prefix, frames in rows:
        for (label, _, _, box, nearest), frame in zip(shots, frames, strict=True):
            x0, y0, side = box
            crop = np.ascontiguousarray(frame[y0 : y0 + side, x0 : x0 + side])
            interp = cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC
            big = cv2.resize(crop, (CLOSEUP_TILE, CLOSEUP_TILE), interpolation=interp)
            tiles.append(tile(big, (0, 0, CLOSEUP_TILE), prefix + label, CLOSEUP_TILE))
    return tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatar", default="default")
    ap.add_argument("-o", "--output", default="docs/rig-contact-sheet.png")
    what = ap.add_mutually_exclusive_group()
    what.add_argument("--poses", action="store_true", help="a yaw x pitch grid instead")
    what.add_argument("--closeups", action="store_true", help="mouth and eyes magnified")
    what.add_argument("--fixes", action="store_true", help="the renderer's trouble spots")
    ap.add_argument("--before", metavar="REV", help="with --fixes: also git revision REV's")
    args = ap.parse_args()
    avatar = load_avatar(args.avatar)
    with Renderer(avatar, size=512) as renderer:
        box = face_box(avatar)
        if args.poses:
            tiles, columns = pose_tiles(renderer), 5
        elif args.closeups:
            tiles, columns = closeup_tiles(renderer), 4
        elif args.fixes:
            tiles, columns = fix_tiles(renderer, args.before), 5
        else:
            tiles, columns = shape_tiles(renderer, box), COLUMNS
    out = sheet(tiles, columns)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    # The sheets are committed: highest PNG compression, or a good JPEG (by the suffix).
    jpeg = Path(args.output).suffix.lower() in (".jpg", ".jpeg")
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if jpeg else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    cv2.imwrite(args.output, cv2.cvtColor(out, cv2.COLOR_RGB2BGR), params)
    print(f"wrote {args.output} ({len(tiles)} tiles)")


if __name__ == "__main__":
    main()
