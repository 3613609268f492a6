from moltir.entry import main

main()
