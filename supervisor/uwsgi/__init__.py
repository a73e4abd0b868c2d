"""The uWSGI adapter: every flag, fifo letter, stats field and procedure of uWSGI's
(its ini, rendering it, its stats socket, its chain reload, ending paused workers);
UwsgiDriver implements appserver.port.AppDriver.

May import: common, process, runtime, sockets, appserver.
"""
