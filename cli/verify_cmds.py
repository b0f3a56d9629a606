"""Commands of this stage; registered on the shared app in tracekit_cli.apps."""
