"""Applying a model: the ``predict`` API and streaming files through it."""
