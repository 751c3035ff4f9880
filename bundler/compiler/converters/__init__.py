"""Converters, one module per estimator family; importing this package registers them all."""

from bundler.compiler.converters import compose, impute, linear, onehot, scalers, trees

__all__ = ["compose", "impute", "linear", "onehot", "scalers", "trees"]
