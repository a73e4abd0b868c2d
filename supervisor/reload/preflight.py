"""Prove the app imports in a fresh interpreter, the way the app server will load it.

Same python (the app's virtualenv, else the configured one, else fnud's own), same
chdir, pythonpath and env, same ``module``/``wsgi-file`` and ``callable`` (a factory
call where the server allows one), the same stand-ins for the server's own modules.
A failure is a PreflightError with the file and line where known, and ``ErrorType:
message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
from collections.abc import Mapping

from supervisor.appserver.spec import AppSpec
from supervisor.common.childenv import child_env

# Runs in the child interpreter. Keep it dependency-free and Python-3.8 compatible.
_PROBE = r"""
import json, os, sys, traceback, importlib, importlib.util
spec = json.loads(sys.argv[1])
def fail(file, line, msg):
    print(json.dumps({"ok": False, "file": file, "line": line, "error": msg})); sys.exit(0)
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
for stub_name in spec.get("stubs", []):  # only inside the server: a stand-in here
    try:
        importlib.import_module(stub_name)
    except ImportError:
        import types
        stub = types.ModuleType(stub_name)
        stub.opt = {}
        stub.numproc = 1
        stub.__getattr__ = lambda name: (lambda *args, **kwargs: None)
        sys.modules[stub_name] = stub
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
            fail(path, 0, "cannot load as Python")
        mod = importlib.util.module_from_spec(s)
        sys.modules[name] = mod
        s.loader.exec_module(mod)
        where_name = path
except BaseException as exc:
    fail(*where(exc))
call = None
if spec.get("factory") and callable_name.endswith(")"):  # name(literal, ...), called
    import ast
    try:
        node = ast.parse(callable_name, mode="eval").body
        call = ([ast.literal_eval(a) for a in node.args],
                {k.arg: ast.literal_eval(k.value) for k in node.keywords})
        callable_name = node.func.id
    except (SyntaxError, ValueError, AttributeError):
        fail(where_name, 0, "'%s' is not a name or a call with literal arguments"
             % callable_name)
app = getattr(mod, callable_name, None)
if app is not None and call is not None:
    try:
        app = app(*call[0], **call[1])
    except BaseException as exc:
        fail(*where(exc))
if app is None:
    fail(getattr(mod, "__file__", where_name), 0, "no callable named '%s'" % callable_name)
if not callable(app):
    fail(getattr(mod, "__file__", where_name), 0, "'%s' is not callable" % callable_name)
def smoke(path):
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
        fail(file, line, "smoke check GET %s raised %s" % (path, message))
    status = seen[-1] if seen else "no status"
    if not status[:1] in ("2", "3"):
        fail("", 0, "smoke check GET %s answered %s" % (path, status))
for path in spec.get("smoke", []):
    smoke(path)
print(json.dumps({"ok": True, "file": getattr(mod, "__file__", None)}))
"""


def supplementary_groups(owner: tuple[int, int]) -> list[int]:
    """The groups uWSGI's initgroups() gives the workers' user."""
    try:
        return os.getgrouplist(pwd.getpwuid(owner[0]).pw_name, owner[1])
    except KeyError:
        return []


class PreflightError(Exception):
    """The app cannot be loaded: where (``file``, ``line``; "" and 0 when unknown) and
    what (``message``). ``str()`` is one line, ``file:line: message``."""

    def __init__(self, message: str, file: str = "", line: int = 0) -> None:
        self.file, self.line, self.message = file, line, message
        where = (f"{file}:{line}: " if line > 0 else f"{file}: ") if file else ""
        super().__init__(where + message)


async def preflight(
    spec: AppSpec,
    environ: Mapping[str, str],
    timeout: float = 60.0,
    owner: tuple[int, int] | None = None,
    smoke: tuple[str, ...] = (),
) -> str:
    """Import the app in a fresh interpreter; return the loaded file or raise PreflightError.

    ``owner`` (uid, gid): import as the user the workers will run as, so that the import
    sees their permissions and leaves no root-owned files behind. ``smoke``: paths to
    GET through the app's WSGI callable there; anything but 2xx/3xx fails.
    """
    if not spec.module and not spec.wsgi_file:
        raise PreflightError("no app configured: the app server's config names no module")
    env = child_env(environ)
    env.update(dict(spec.env))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTHONPATH", None)
    out, err, returncode = await _run_probe(spec, env, timeout, owner, smoke)
    return _verdict(spec, out, err, returncode)


async def _run_probe(
    spec: AppSpec,
    env: dict[str, str],
    timeout: float,
    owner: tuple[int, int] | None,
    smoke: tuple[str, ...],
) -> tuple[bytes, bytes, int | None]:
    """Run the import in its own session; (stdout, stderr, exit code)."""
    payload = json.dumps(
        {
            "chdir": spec.chdir,
            "pythonpath": list(spec.pythonpath),
            "module": spec.module,
            "wsgi_file": spec.wsgi_file,
            "callable": spec.callable,
            "stubs": list(spec.stubs),
            "factory": spec.factory,
            "file_prefix": spec.file_prefix,
            "smoke": list(smoke),
        }
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            spec.python, "-c", _PROBE, payload,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=spec.chdir if os.path.isdir(spec.chdir) else None,
            start_new_session=True,
            user=owner[0] if owner else None,
            group=owner[1] if owner else None,
            extra_groups=supplementary_groups(owner) if owner else None,
        )
    except OSError as exc:
        raise PreflightError(f"cannot run the app's python: {exc.strerror}", spec.python) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise PreflightError(
            f"{spec.label}: importing the app took longer than {timeout:.0f}s"
        ) from None
    finally:  # timed out, or fnud stopping: nothing of the import may outlive us
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.shield(proc.wait())
    return out, err, proc.returncode


def _verdict(spec: AppSpec, out: bytes, err: bytes, returncode: int | None) -> str:
    """The loaded file from the probe's JSON line, or PreflightError with its reason."""
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if result.get("ok"):
                return str(result.get("file") or spec.label)
            file, number = str(result.get("file") or ""), int(result.get("line") or 0)
            raise PreflightError(str(result.get("error")), file, number)
    tail = err.decode(errors="replace").strip().splitlines()
    reason = tail[-1] if tail else f"exit code {returncode}"
    raise PreflightError(f"{spec.label}: importing the app failed: {reason}")
