"""Watching files for reloads: [watch] saves (watchdog) and the ini's touch files. The
callbacks only report; the daemon wires them to its queue.

May import: common, logs.
"""
