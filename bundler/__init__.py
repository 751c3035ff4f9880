"""mlbundle's build tool: spec -> verified artifacts -> plan -> gate -> record -> frozen app."""

from mlbundle_runtime import __version__

__all__ = ["__version__"]
