"""The few domain exceptions callers branch on. Each message names what was received and
what is accepted."""


class StylecastError(Exception):
    """Base class of every error stylecast raises on purpose."""


class InputError(StylecastError, ValueError):
    """Bad input from a user or client: a file, an argument, a message. Say what was wrong
    and what is accepted."""


class NoFaceError(InputError):
    """An image or video frame in which no usable face was found."""


class FormatError(InputError):
    """A file that is not of the expected format or version (motion, avatar, style, model)."""


class BackendError(StylecastError, RuntimeError):
    """A system dependency is missing or failed (OpenGL context, ONNX Runtime provider,
    codec). The message names the package to install."""


class CapacityError(StylecastError):
    """The engine refuses new work it cannot serve in real time (admission control)."""
