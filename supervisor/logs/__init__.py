"""fnud's own logging (structlog: human on a TTY, logfmt/journald otherwise), following a
program's log file (tail), and the detached daemon's own log file.

May import: common.
"""
