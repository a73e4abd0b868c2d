"""Is the stack answering, and who is to blame if not: the probe, its periodic loop,
and the tiny HTTP client both use.

May import: common, config, logs, process, appserver.
"""
