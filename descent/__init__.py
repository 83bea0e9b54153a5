"""descent: turn thousands of descent-camera frames into a landing video."""

__version__ = "0.1.0"
