import sys

from business.cli import main

sys.exit(main())
