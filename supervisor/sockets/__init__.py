"""The listening sockets fnud holds for its programs: binding, holding, handing over,
and taking them back from running masters.

May import: common.
"""
