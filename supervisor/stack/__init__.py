"""The stack: nginx and the app server's generations built from one config (the plan),
the sockets held for them, state.json written from them; adopting what a killed
daemon left, and finding or stopping survivors.

May import: common, config, logs, runtime, process, sockets, appserver, uwsgi, gunicorn,
nginx.
"""
