"""The `fnud` command: a thin client of the control socket for the daily commands; start,
check and systemd-unit import what they need when they run.

May import: common, config, control, runtime.
"""
