"""autotts: discover test-time scaling controllers from recorded reasoning traces."""

__version__ = "0.1.0"
