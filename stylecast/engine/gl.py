"""OpenGL pieces of the renderer: a headless context and the shaders.

Every program takes clip-space positions (in_pos) and a vec4 of per-vertex data
(in_attr) whose meaning depends on the part drawn (see engine/render.py).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import numpy as np

from stylecast.engine.errors import BackendError

EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri"


def _vertex(*inputs: tuple[str, str]) -> str:
    """A vertex shader that places the clip-space position (in_pos) and hands each
    per-vertex input (type, name) on to the fragment shader: in_<name> as v_<name>."""
    declared = "".join(f"in {kind} in_{name};\nout {kind} v_{name};\n" for kind, name in inputs)
    copied = "".join(f"    v_{name} = in_{name};\n" for _, name in inputs)
    return f"""
#version 330
in vec3 in_pos;
{declared}void main() {{
    gl_Position = vec4(in_pos, 1.0);
{copied}}}
"""


VERTEX = _vertex(("vec4", "attr"))
TEXTURED = """
#version 330
uniform sampler2D tex;
in vec4 v_attr;
out vec4 f_color;
void main() {
    f_color = vec4(texture(tex, v_attr.xy).rgb, 1.0);
}
"""


def _skin_vertex(uv: str, uv_note: str, weight_note: str) -> str:
    """A vertex shader for a skin layer drawn over the face (lid skin, stretched chin):
    the face's positions, the layer's texture coordinates `uv` (in_attr.xy or .zw) and a
    per-vertex weight (in_lid) for how much of the layer shows."""
    return f"""
#version 330
in vec3 in_pos;
in vec4 in_attr;
in float in_lid;
out vec2 v_uv;
out float v_lid;
void main() {{
    gl_Position = vec4(in_pos, 1.0);
    v_uv = in_attr.{uv};  // {uv_note}
    v_lid = in_lid;  // {weight_note}
}}
"""


LID_VERTEX = _skin_vertex("zw", "where the lid skin is sampled", "how much of it shows here")
STRETCH_VERTEX = _skin_vertex(
    "xy", "the skin's own place, in a copy blurred across", "how stretched it is here"
)
LID = """
#version 330
uniform sampler2D lid_skin;
uniform float shade;  // a closed lid lies in the eye socket's shadow
in vec2 v_uv;
in float v_lid;
out vec4 f_color;
void main() {
    f_color = vec4(shade * texture(lid_skin, v_uv).rgb, v_lid);
}
"""
FRINGE = """
#version 330
uniform sampler2D tex;
in vec4 v_attr;  // (u, v, alpha, 0)
out vec4 f_color;
void main() {
    f_color = vec4(texture(tex, v_attr.xy).rgb, v_attr.z);
}
"""
# The mouth interior (cavity, teeth, gums, tongue): vertex colours, shaded by how far the lips are
# open, and antialiased along each piece's outline without multisampling: in_edge holds
# barycentric coordinates that fall to 0 on the outline (render_mesh.outlined), so their
# least value over its screen-space gradient is the distance to the outline in pixels.
INTERIOR_VERTEX = _vertex(("vec4", "attr"), ("vec3", "edge"), ("vec3", "flat"))
INTERIOR = """
#version 330
uniform float lit;  // the lips' shadow: 1 wide open, darker barely open
uniform float detail;  // how much of the shading shows (less barely open)
uniform float edge_bias;  // coverage of a pixel centred on the outline
in vec4 v_attr;
in vec3 v_edge;
in vec3 v_flat;  // what the shading flattens towards: the part's typical colour
out vec4 f_color;
void main() {
    vec3 c = v_attr.rgb;
    if (v_attr.w >= 0.0) {  // bundles before 2026-11-21: gaps drawn on one strip of teeth
        float depth = v_attr.w >= 1000.0 ? 0.9 : 0.72;
        float f = fract(v_attr.w);
        float g = smoothstep(0.0, 0.1, f) * smoothstep(1.0, 0.9, f);
        c *= mix(depth, 1.0, g);
    }
    c = mix(v_flat, c, detail) * lit;
    vec3 grad = sqrt(dFdx(v_edge) * dFdx(v_edge) + dFdy(v_edge) * dFdy(v_edge));
    vec3 px = v_edge / max(grad, vec3(1e-6));
    float d = min(px.x, min(px.y, px.z));
    f_color = vec4(c, clamp(d + edge_bias, 0.0, 1.0));
}
"""


def texture(ctx, image: np.ndarray):
    """An RGBA8 texture from an (H, W, 3) uint8 RGB image."""
    h, w = image.shape[:2]
    rgba = np.concatenate([image, np.full((h, w, 1), 255, np.uint8)], axis=2)
    return ctx.texture((w, h), 4, np.ascontiguousarray(rgba))


@functools.cache
def gl_finish() -> Callable[[], None] | None:
    """glFinish of the current context, called through ctypes, or None where EGL cannot
    give it. ctypes releases Python's GIL for the call: moderngl's own calls hold it, so
    while llvmpipe rasterized a frame (its read-back waits for that) every other thread of
    the process stopped (docs/engine.md, "Stalls"). Called just before a read-back, it lets
    the draws complete with the GIL free; the read then only copies."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
        egl.eglGetProcAddress.restype = ctypes.c_void_p
        egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
        address = egl.eglGetProcAddress(b"glFinish")
    except (OSError, AttributeError):
        return None
    return ctypes.CFUNCTYPE(None)(address) if address else None


def create_context():
    """A headless OpenGL 3.3 context through EGL; BackendError naming the packages when
    none can be made."""
    try:
        import moderngl
    except ImportError as e:
        raise BackendError(f"moderngl is not installed ({e}); pip install moderngl") from e
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as e:  # moderngl raises plain Exception for a missing EGL/driver
        raise BackendError(
            f"cannot create a headless OpenGL context through EGL ({e}); on Debian/Ubuntu "
            f"install: apt-get install {EGL_PACKAGES}"
        ) from e
