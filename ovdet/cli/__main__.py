"""``python -m ovdet.cli``: the same as the ``ovdet`` command."""

import sys

from ovdet.cli import main

sys.exit(main())
