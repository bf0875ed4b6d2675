"""Entry points users run: ``python -m training.train``, ``python -m training.evaluate``."""
