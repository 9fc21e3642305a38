from lab.load.run import main

raise SystemExit(main())
