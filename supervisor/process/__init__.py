"""One supervised program: its process, its state machine, its output, the events it
reports; its process group; reopening logs. The driver protocol every adapter
implements.

May import: common, logs, policy.
"""
