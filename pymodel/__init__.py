"""pimphony: golden model, full-system simulator and RTL generator of a PIM orchestrator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pimphony")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
