"""Entry script PyInstaller freezes: everything else lives in ``app.cli``.

Kept to two lines so the frozen ``__main__`` holds no logic that could drift
from the importable, testable CLI.
"""

from app.cli import main

raise SystemExit(main())
