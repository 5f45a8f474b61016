import sys

from fooddispatch.cli import main

sys.exit(main())
