"""Pure decisions, tested with plain values: what follows a program's exit (restart now,
back off, give up) and whether a new generation must be rolled back.

May import: config.
"""
