"""auhm: facial Action Unit intensities by heatmap regression, frame by frame, for whole video corpora."""

__version__ = "0.1.0"
