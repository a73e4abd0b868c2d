"""The one port between fnud and an app server: what a generation of it must do (the
AppDriver protocol), what it loads (AppSpec) and what it tells of its workers.

May import: common, process, runtime.
"""
