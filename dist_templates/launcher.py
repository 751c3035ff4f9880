"""Entry script PyInstaller freezes: everything else lives in ``mlbundle_runtime.cli``.

Kept to two lines so the frozen ``__main__`` holds no logic that could drift
from the importable, testable CLI.
"""

from mlbundle_runtime.cli import main

raise SystemExit(main())
