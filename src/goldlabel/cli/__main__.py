from goldlabel.cli import main

main()
