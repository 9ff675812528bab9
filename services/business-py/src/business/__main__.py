from business.worker import main

main()
