"""Inference on videos: ``annotate`` (streaming batch annotation, local threads or Ray) and
``render`` (overlay videos). Import from the submodules: ``auhm.infer.annotate.annotate``."""
