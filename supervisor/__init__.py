"""fnud: supervise the Flask -> app server -> nginx stack as one unit.

The subpackages are the parts; each ``__init__`` says what it owns and what it may
import, and tests/unit/test_shape.py holds every import to that (no cycle, not even
through TYPE_CHECKING). From the bottom up:

  common, logs, runtime, config, control     building blocks, fnud.toml, the socket protocol
  systemd, policy, process, sockets          sd_notify, pure decisions, one program, held sockets
  appserver -> uwsgi; nginx                  the app server's port and its adapter; nginx's
  health, triggers, checks                   the probe, file triggers, `fnud check`
  stack                                      the programs built from one config
  reload, web                                the gated reload; the status page and metrics
  daemon                                     the loop, the command registry, operations
  cli                                        the `fnud` command
"""
