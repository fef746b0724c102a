from inquest.lab.cli import main

raise SystemExit(main())
