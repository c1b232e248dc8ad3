"""voyager_pipe: 3D-grounded, long-range world generation from a single image."""

__version__ = "0.1.0"
