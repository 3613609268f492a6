from moltir.cli import main

main()
