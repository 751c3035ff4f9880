from mlbundle_runtime.cli import main

raise SystemExit(main())
