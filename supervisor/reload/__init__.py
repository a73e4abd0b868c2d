"""The gated reload: the gate (checks, nginx -t, the app preflight), generations with
their settle and rollback, and the orchestration of one reload. The gate checks and
never switches; the reload carries out what the gate passed.

May import: common, config, logs, runtime, process, policy, appserver, health, nginx,
stack, checks, systemd.
"""
