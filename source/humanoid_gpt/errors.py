"""Errors a user can act on: each names the file, the field and the fix."""

from __future__ import annotations


class HGPTError(Exception):
    """Base class of the project's user-facing errors."""


class MotionFormatError(HGPTError, ValueError):
    """A motion file cannot be read as the format it claims to be (columns, keys, shapes, dtypes)."""


class MotionValidationError(HGPTError, ValueError):
    """A motion file was read but its content is not a usable clip (NaN, bad quaternions, impossible values)."""


class AssetError(HGPTError, FileNotFoundError):
    """A robot model, mesh or other asset is missing or unusable."""


class ConfigError(HGPTError, ValueError):
    """A configuration or command-line option that cannot work (a count below one, an unknown preset, ...)."""
