"""The status page, its reload history and request rate, and Prometheus metrics: views
that read, with two buttons that go through the command registry (given as hooks).

May import: common, logs, process, appserver.
"""
