from dtf.cli import main

raise SystemExit(main())
