"""stylecast: a real-time streaming engine for stylized talking-head avatars."""

__version__ = "0.1.0"
