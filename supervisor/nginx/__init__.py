"""The nginx adapter: its config read with crossplane, nginx -t, its command line and
signals, holding its listens, and its confirmed reload.

May import: common, process, sockets.
"""
