import sys

from warncast.cli import main

sys.exit(main())
