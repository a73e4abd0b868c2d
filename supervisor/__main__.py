from supervisor.cli.status import main

main()
