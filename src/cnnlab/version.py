"""The package's version, on a floor every module can import."""

__version__ = "0.1.0"
