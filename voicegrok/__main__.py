"""``python -m voicegrok``: the same as the ``voicegrok`` command."""

import sys

from .cli import main

sys.exit(main())
