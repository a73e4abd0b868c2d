"""The Python the app preflight runs in the app's own interpreter (never in fnud's).

``CHECK`` defines ``run_check(spec)``: chdir, sys.path, import the app the way the app
server will (``module[:callable]`` or ``wsgi-file``), then the smoke GETs through its WSGI
callable; it returns ``{"ok": true, "file": ...}`` or ``{"ok": false, "file", "line",
"error"}``. ``COLD`` runs one check in a fresh interpreter. ``WARM`` is the long-lived
warm parent (warm.py): it forks a fresh child for every check and imports, itself, only
what good checks loaded from the standard library and site-packages.

Kept dependency-free and Python-3.8 compatible: it runs in whatever Python the app has.
"""

from __future__ import annotations

CHECK = r'''
import json, os, sys, traceback, importlib, importlib.util


class Failed(Exception):
    pass


def where(exc):
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno, "%s: %s" % (type(exc).__name__, exc.msg)
    tb = traceback.extract_tb(exc.__traceback__)
    frames = [f for f in tb if "<frozen" not in f.filename and f.filename != "<string>"]
    stdlib = os.path.dirname(os.__file__)
    frames = [f for f in frames if not f.filename.startswith(stdlib)] or frames
    if frames:
        f = frames[-1]
        return f.filename, f.lineno, "%s: %s" % (type(exc).__name__, exc)
    return "", 0, "%s: %s" % (type(exc).__name__, exc)


def stub_modules(names):
    """The app server's own modules, importable only inside it: a stand-in for each."""
    for stub_name in names:
        if stub_name in sys.modules:
            continue
        try:
            importlib.import_module(stub_name)
        except ImportError:
            import types
            stub = types.ModuleType(stub_name)
            stub.opt = {}
            stub.numproc = 1
            stub.__getattr__ = lambda name: (lambda *args, **kwargs: None)
            sys.modules[stub_name] = stub


def factory_call(callable_name, where_name):
    """``name(literal, ...)`` (a factory the server calls): (name, args, kwargs)."""
    import ast
    try:
        node = ast.parse(callable_name, mode="eval").body
        return (node.func.id, [ast.literal_eval(a) for a in node.args],
                {k.arg: ast.literal_eval(k.value) for k in node.keywords})
    except (SyntaxError, ValueError, AttributeError):
        raise Failed(where_name, 0, "'%s' is not a name or a call with literal arguments"
                     % callable_name)


def load(spec):
    try:
        if spec["chdir"]:
            os.chdir(spec["chdir"])
        for p in reversed(spec["pythonpath"]):
            sys.path.insert(0, p)
        sys.path.insert(0, os.getcwd())
        callable_name = spec["callable"]
        if spec["module"]:
            modname = spec["module"]
            if ":" in modname:
                modname, callable_name = modname.split(":", 1)
            mod = importlib.import_module(modname)
            where_name = modname
        else:
            path = spec["wsgi_file"]
            name = spec["file_prefix"] + "".join(c if c.isalnum() else "_" for c in path)
            s = importlib.util.spec_from_file_location(name, path)
            if s is None or s.loader is None:
                raise Failed(path, 0, "cannot load as Python")
            mod = importlib.util.module_from_spec(s)
            sys.modules[name] = mod
            s.loader.exec_module(mod)
            where_name = path
    except Failed:
        raise
    except BaseException as exc:
        raise Failed(*where(exc))
    call = None
    if spec.get("factory") and callable_name.endswith(")"):
        callable_name, *call = factory_call(callable_name, where_name)
    app = getattr(mod, callable_name, None)
    if app is not None and call is not None:
        try:
            app = app(*call[0], **call[1])
        except BaseException as exc:
            raise Failed(*where(exc))
    if app is None:
        raise Failed(getattr(mod, "__file__", where_name), 0,
                     "no callable named '%s'" % callable_name)
    if not callable(app):
        raise Failed(getattr(mod, "__file__", where_name), 0,
                     "'%s' is not callable" % callable_name)
    return app, mod


def smoke(app, path):
    import io
    path_info, _, query = path.partition("?")
    env = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path_info,
        "QUERY_STRING": query, "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    seen = []

    def start_response(status, headers, exc_info=None):
        seen.append(status)
        return lambda data: None

    try:
        body = app(env, start_response)
        try:
            for _ in body:
                pass
        finally:
            if hasattr(body, "close"):
                body.close()
    except BaseException as exc:
        file, line, message = where(exc)
        raise Failed(file, line, "smoke check GET %s raised %s" % (path, message))
    status = seen[-1] if seen else "no status"
    if not status[:1] in ("2", "3"):
        raise Failed("", 0, "smoke check GET %s answered %s" % (path, status))


def run_check(spec):
    try:
        app, mod = load(spec)
        for path in spec.get("smoke", []):
            smoke(app, path)
    except Failed as exc:
        file, line, message = exc.args
        return {"ok": False, "file": file, "line": line, "error": message}
    return {"ok": True, "file": getattr(mod, "__file__", None)}
'''

COLD = CHECK + r'''
SPEC = json.loads(sys.argv[1])
stub_modules(SPEC.get("stubs", []))
print(json.dumps(run_check(SPEC)))
'''

WARM = CHECK + r'''
import select, signal, site, sysconfig, time


def die_with_parent(parent):
    """PR_SET_PDEATHSIG: SIGKILL when fnud's daemon dies, however it dies."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass
    if os.getppid() != parent:
        os._exit(0)


def outside_roots():
    """Where third-party code lives: the standard library and site-packages."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    roots = {sysconfig.get_paths().get(n) for n in names}
    roots.update(getattr(site, "getsitepackages", lambda: [])())
    return sorted(os.path.realpath(r) for r in roots if r)


ROOTS = outside_roots()
SITE = [r for r in ROOTS if r.endswith(("site-packages", "dist-packages"))]


def third_party(mod, own):
    path = getattr(mod, "__file__", None)
    if not isinstance(path, str):  # built in, frozen, or a server module's stand-in
        return False
    path = os.path.realpath(path)
    return any(path.startswith(r + os.sep) for r in ROOTS) and not any(
        path.startswith(o + os.sep) for o in own)


def own_dirs(spec):
    return [os.path.realpath(d) for d in [spec["chdir"], *spec["pythonpath"]] if d]


def shadowed(spec):
    """A module warm here that the release (or its pythonpath) has its own copy of:
    the check would not import what the app server will."""
    from importlib.machinery import PathFinder
    dirs = own_dirs(spec)
    for name in sorted({n.partition(".")[0] for n in sys.modules}):
        if name in sys.builtin_module_names or name == "__main__":
            continue
        found = PathFinder.find_spec(name, dirs)
        if found is not None:
            return name
    return ""


def child(spec, out):
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        stub_modules(spec.get("stubs", []))
        result = run_check(spec)
        if result["ok"]:
            own = own_dirs(spec)
            result["modules"] = sorted(n for n, m in list(sys.modules.items())
                                       if third_party(m, own))
        data = json.dumps(result).encode()
    except BaseException as exc:
        data = json.dumps({"ok": False, "file": "", "line": 0, "error": repr(exc)}).encode()
    while data:
        data = data[os.write(out, data):]
    os._exit(0)


def forked_check(spec, timeout):
    name = shadowed(spec)
    if name:
        return {"cold": "the release has its own '%s'" % name}
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        child(spec, w)
    os.close(w)
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        ready = select.select([r], [], [], max(0.0, left))[0]
        if not ready:
            os.kill(pid, signal.SIGKILL)
            chunks = None
            break
        chunk = os.read(r, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if chunks is None:
        return {"timeout": True}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"ok": False, "file": "", "line": 0,
                "error": "the check ended without an answer (wait status %d)" % status}


def warm_up(names):
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            pass


def serve(parent):
    die_with_parent(parent)
    os.chdir("/")
    sys.dont_write_bytecode = True
    print(json.dumps({"ready": os.getpid(), "site": SITE}), flush=True)
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # fnud closed the pipe: it stops, or replaces this parent
        request = json.loads(line)
        result = forked_check(request["spec"], request["timeout"])
        print(json.dumps(result), flush=True)
        if result.get("ok"):
            stub_modules(request["spec"].get("stubs", []))  # as the check had them
            warm_up(result.get("modules", []))


serve(int(sys.argv[1]))
'''
