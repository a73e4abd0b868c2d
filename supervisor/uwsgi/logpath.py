"""How uWSGI's log reaches uwsgi.log, and what that means for `fnud reopen-logs`.

Default (``[uwsgi] log_master = false``): fnud starts uWSGI with stdout and stderr on
uwsgi.log (opened O_APPEND) and adds nothing: the master and every worker write their
lines into the file themselves, exactly as the same ini started by hand. Nothing can
make them reopen it (the fifo's ``l`` reopens only the master's own descriptor), so
rotate uwsgi.log with logrotate's ``copytruncate``; fnud's tail follows the truncation.

``[uwsgi] log_master = true``: fnud adds ``--logto uwsgi.log --log-master``. Every worker
sends each line through a socketpair to the master, which writes the file and reopens it
on the fifo's ``l``: rotation by rename works, at a price in throughput when requests are
logged (DESIGN.md: 5,902 against 6,131 req/s; `make bench`, section daemon_footprint,
measures it in the same run).
"""

from __future__ import annotations

DIRECT_NOTE = (
    "uwsgi.log is written by uWSGI's workers directly ([uwsgi] log_master = false): "
    "rotate it with copytruncate"
)
