import sys

from xapitap.cli import main

sys.exit(main())
