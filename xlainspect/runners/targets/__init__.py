"""GPU target descriptions (``GpuTargetConfigProto`` text) that deviceless compiles read; data only, no code.

A package of its own so that setuptools ships the ``*.txtpb`` files as this package's data without warning that a
folder Python can import is missing from the packages.
"""
