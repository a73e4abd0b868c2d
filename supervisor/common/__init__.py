"""Small building blocks every part may use: listen addresses and who holds a port,
the environment children get, atomic file writes, progress reporting, inotify, text
safe to print.

May import: nothing.
"""
