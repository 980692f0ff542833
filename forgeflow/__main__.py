from forgeflow.cli import main

main()
