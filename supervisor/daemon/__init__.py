"""The daemon: one asyncio loop and its typed events, the command registry every door
dispatches to, one operation at a time, start, restarts, stop, and status.

May import: common, config, control, logs, runtime, systemd, policy, process, appserver,
health, triggers, stack, reload, web.
"""
