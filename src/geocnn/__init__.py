"""geocnn: convolutional neural networks on gridded earth data, declared in YAML.

The library never prints: it logs through :mod:`logging` (a ``NullHandler`` is installed here)
and reports progress through :mod:`geocnn.progress`; the command line installs rich handlers.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
