"""The gunicorn adapter: every setting, hook, signal and log line of gunicorn's that fnud
uses (its config file read with ``ast``, the wrapper config each generation runs under,
its readiness and pause hooks, its access log); GunicornDriver implements
appserver.port.AppDriver.

May import: common, process, runtime, sockets, appserver.
"""
