"""PyInstaller runtime hook: ``MLBUNDLE_SELFTEST=1`` runs the release gate instead of the app.

Runs before the application's own entry point, so every bundle, the built-in
application or the release engineer's own, can prove its model inside the
binary the same way, whatever command line the application has.
"""

import os

if os.environ.get("MLBUNDLE_SELFTEST") == "1":
    from mlbundle_runtime.cli import main

    raise SystemExit(main(["selftest"]))
