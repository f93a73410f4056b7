"""nnpipe-extras: example plugins for nnpipe (swish, focal loss, Gaussian-noise layer, shift
augmentation).

nnpipe finds them through the entry points in this distribution's ``pyproject.toml``; nothing
here is imported until a pipeline (or ``nnpipe plugins``) asks for it.
"""
