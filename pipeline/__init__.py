"""nnpipe's framework: stage specs, the plugin registry, pipeline files, the runner and the CLI.

It knows nothing about MNIST or neural networks; those are plugins.
"""

__version__ = "0.1.0"
