"""The field report's entry script: what ``[app] entry`` names for PyInstaller."""

from app.report import main

raise SystemExit(main())
