import sys

from xapitap.translator.process import main

sys.exit(main())
