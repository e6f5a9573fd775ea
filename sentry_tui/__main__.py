import sys

from sentry_tui.cli import main

sys.exit(main())
