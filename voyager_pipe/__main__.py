from voyager_pipe.cli import main

raise SystemExit(main())
