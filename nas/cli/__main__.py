"""``python -m nas.cli``: the ``nas`` command."""
import sys

from nas.cli.commands import main

sys.exit(main())
