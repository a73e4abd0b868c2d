"""The control socket's protocol: length-prefixed JSON frames, the blocking client the
CLI uses (wire) and the daemon's server, which hands each command to the registry.

May import: common.
"""
