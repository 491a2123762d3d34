"""Landmarks per frame: every landmark backend, registered, and the ``auhm landmarks`` job.

This package sits after :mod:`auhm.models` in the pipeline: its backends run networks (``network``:
a checkpoint of ``auhm train --task landmarks``; ``fan``: face-alignment's 2D-FAN-4), while the
interface, the registry and the backends that need no network (dlib, truth) are in
:mod:`auhm.face`. The registry finds every backend on its first lookup: make backends with
:func:`make_backend`. The job is :mod:`auhm.landmarks.job`.
"""

from auhm.face.registry import backend_name, backend_names, backend_spec, check_backend, make_backend

__all__ = ["backend_name", "backend_names", "backend_spec", "check_backend", "make_backend"]
