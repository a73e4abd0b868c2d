"""systemd: sd_notify (readiness, reloads, watchdog, the fd store) and the unit file
rendered for a config and an installation.

May import: common, config.
"""
