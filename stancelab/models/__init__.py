"""The shared model interface and registry, calibration, the baseline, the transformer
family (``models.transformer``), and training a run (``models.fit``)."""
