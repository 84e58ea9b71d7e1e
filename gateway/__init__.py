"""Where the parts meet: configuration, the Twisted service tree, the CLI, metrics and the web.

Nothing below this package knows about any other sibling; this package wires SMPP, the IVR and
the store around the shared reset rules in :mod:`commands`.
"""

__version__ = "0.1.0"
