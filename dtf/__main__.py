from dtf.cli.main import main

raise SystemExit(main())
