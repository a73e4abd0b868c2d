"""`fnud check`: every rule about fnud.toml, the app server's ini and nginx.conf, as
findings with file:line; the gate runs the error ones before every start and reload.

May import: common, config, runtime, nginx, uwsgi, gunicorn, stack.
"""
