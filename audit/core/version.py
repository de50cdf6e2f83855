"""The advaudit version (one place; the package root and the result read it from here)."""
__version__ = "0.1.0"
