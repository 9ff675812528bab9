from replaygate.cli import run

run()
