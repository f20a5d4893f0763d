"""Fixtures shared by several test modules."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (two spin against each other on 2 cores).
    Modules of torch tests use it with `pytestmark = pytest.mark.usefixtures(...)`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def avatar():
    """The bundled default avatar."""
    from stylecast.engine.avatar import load_avatar

    return load_avatar("default")


@pytest.fixture(scope="module")
def renderer(avatar):
    """A 512 px renderer of `avatar`; the module is skipped where no EGL context can be made."""
    from stylecast.engine.errors import BackendError
    from stylecast.engine.render import Renderer

    try:
        r = Renderer(avatar)
    except BackendError as e:  # pragma: no cover - CI installs Mesa EGL
        pytest.skip(str(e))
    yield r
    r.close()
