"""``fnud init``: read the user's files, decide, check the result, then write it.

The only module of supervisor.adopt that touches the OS. The would-be directory is
staged in a temp dir first and checked there exactly like ``fnud check`` would check it
(supervisor.checks), plus the ports (a port held by the app's old uWSGI or nginx is a
warning: stop them before ``fnud start``) and the app preflight (through the gate, the
only module that runs it). Any error: printed as ``fnud check`` prints findings, with the
original ini's line numbers, and nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import crossplane
import psutil

from supervisor.adopt import files, ini_fix, report, site, toml
from supervisor.adopt.errors import InitError
from supervisor.checks import ports_free
from supervisor.checks import runner as checks
from supervisor.checks.finding import Finding, error, warning
from supervisor.checks.inputs import gather
from supervisor.common import ports
from supervisor.common.trust import read_untrusted
from supervisor.config.parse import ConfigError, load_config
from supervisor.config.schema import Config
from supervisor.uwsgi import options
from supervisor.uwsgi.driver import find_binary
from supervisor.uwsgi.ini import parse_ini

Output = Callable[[str], None]
DEFAULT_CONF_DIR = Path("/etc/nginx")
DEBIAN_PLUGINS = Path("/usr/lib/uwsgi/plugins")
OLD_PROGRAMS = ("uwsgi", "nginx")
MAX_INCLUDED_FILES = 200


@dataclass(frozen=True)
class Options:
    """The command line of ``fnud init``."""

    ini: str
    site: str = ""
    directory: str = "fnud"
    venv: str = ""
    health_path: str = "/"
    listen: str = ""
    runtime_dir: str = ""
    log_dir: str = ""
    user: str = ""
    uwsgi_binary: str = ""
    nginx_conf_dir: str = ""
    force: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class Plan:
    """Everything to write, decided; nothing written yet."""

    directory: Path
    ini_label: str  # the original ini as the user named it (edits and findings say it)
    fixed: ini_fix.FixedIni
    files: tuple[tuple[str, str], ...]  # (name in directory, text)
    links: tuple[site.Link, ...]
    notes: tuple[Finding, ...]  # what the site file keeps that fnud cannot fix


def run(opts: Options, out: Output, err: Output) -> int:
    """The whole command; 0 when written (or a clean dry run), 1 otherwise."""
    try:
        plan = build(opts)
        out_lines = report.edits(plan.ini_label, plan.fixed.edits)
        if not opts.force and not opts.dry_run:
            refuse_existing(plan)
        files.refuse_untrusted(plan.directory)
        findings = [*plan.notes, *verify(plan)]
    except InitError as exc:
        err(f"fnud: {exc}")
        return 1
    for line in out_lines:
        out(line)
    for finding in findings:
        out(finding.format())
    if any(f.is_error for f in findings):
        err(f"fnud: {checks.summary(findings)}: nothing written")
        return 1
    if opts.dry_run:
        existing = {n for n, _ in plan.files if os.path.lexists(plan.directory / n)}
        for line in report.dry_run(plan.directory, plan.files, plan.links, existing):
            out(line)
        return 0
    try:
        write(plan)
    except InitError as exc:
        err(f"fnud: {exc}")
        return 1
    except OSError as exc:
        err(f"fnud: {exc.filename or plan.directory}: cannot write: {exc.strerror or exc}")
        return 1
    for line in report.written(plan.directory, (n for n, _ in plan.files), plan.links):
        out(line)
    for line in report.next_commands(plan.directory / "fnud.toml"):
        out(line)
    return 0


# -- gather and decide -------------------------------------------------------------------


def absolute(path: str) -> Path:
    try:
        expanded = Path(path).expanduser()
    except RuntimeError:  # ~user that does not exist: a plain name then
        expanded = Path(path)
    return Path(os.path.abspath(expanded))


def read_text(path: Path, what: str) -> str:
    """The user's file, read as root reads the app's files (no planted link, no FIFO)."""
    try:
        return read_untrusted(path).decode("utf-8")
    except FileNotFoundError:
        raise InitError(path, 0, f"{what}: no such file") from None
    except IsADirectoryError:
        raise InitError(path, 0, f"{what}: is a directory, not a file") from None
    except OSError as exc:
        raise InitError(path, 0, f"{what}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise InitError(path, 0, f"{what}: not UTF-8 text (byte {exc.start})") from None


def build(opts: Options) -> Plan:
    ini_path = absolute(opts.ini)
    text = read_text(ini_path, "--ini")
    _validate(opts)
    binary, debian = uwsgi_binary(opts.uwsgi_binary)
    venv = venv_dir(opts.venv)
    fixed = ini_fix.fix_ini(text, ini_fix.Source(ini_path, debian, venv))
    if venv and fixed.venv and fixed.venv != venv:
        raise InitError(ini_path, 0, (
            f"names the virtualenv {fixed.venv}, --venv says {venv}: drop --venv or fix "
            "the ini"
        ))
    conf_dir = nginx_conf_dir(opts)
    conf, links, notes, url = nginx_files(opts, fixed, ini_path, conf_dir)
    root = os.geteuid() == 0
    spec = toml.TomlSpec(
        origin_ini=str(ini_path),
        site=str(absolute(opts.site)) if opts.site else "",
        runtime_dir=str(absolute(opts.runtime_dir)) if opts.runtime_dir else (
            "/run/fnud" if root else "run"),
        log_dir=str(absolute(opts.log_dir)) if opts.log_dir else (
            "/var/log/fnud" if root else "log"),
        user=opts.user or ("www-data" if root else ""),
        binary=binary if opts.uwsgi_binary or debian else "",
        binary_why="Debian's uwsgi (uwsgi-core + uwsgi-plugin-python3)" if debian
        else "--uwsgi-binary",
        python=f"{fixed.venv}/bin/python" if fixed.venv else "",
        health_url=url,
    )
    files = (("uwsgi.ini", fixed.text), ("nginx.conf", conf), ("fnud.toml", toml.render(spec)))
    return Plan(absolute(opts.directory), opts.ini, fixed, files, links, notes)


def _validate(opts: Options) -> None:
    path = opts.health_path
    if not path.startswith("/") or any(ch.isspace() for ch in path):
        raise InitError("", 0, f"--health-path must start with / (no spaces), got '{path}'")
    if opts.listen and opts.site:
        raise InitError("", 0, "--listen is for the server block fnud init writes without "
                        "--nginx-site; the site file's own listen lines are kept")
    if opts.listen and (site.url_for(opts.listen, "/") is None or
                        site.quoted(opts.listen) != opts.listen):
        raise InitError("", 0, f"--listen takes PORT or HOST:PORT, got '{opts.listen}'")


def uwsgi_binary(configured: str) -> tuple[str, bool]:
    """The uwsgi fnud will run, and whether it is Debian's (Python as a plugin)."""
    found = find_binary(configured)
    if configured and found is None:
        raise InitError("", 0, f"--uwsgi-binary {configured}: not an executable")
    if found is None:
        return "", False  # fnud check reports it
    found = str(absolute(found))
    debian = os.path.realpath(found).startswith("/usr/bin/") and DEBIAN_PLUGINS.is_dir()
    return found, debian


def venv_dir(venv: str) -> str:
    if not venv:
        return ""
    path = absolute(venv)
    if not (path / "bin" / "python").exists():
        raise InitError(path, 0, "--venv: no bin/python in it (name the app's virtualenv)")
    return str(path)


def nginx_conf_dir(opts: Options) -> Path:
    """Where the site's relative includes lead: the directory holding the nginx.conf
    among the site file's parents (Debian: /etc/nginx)."""
    if opts.nginx_conf_dir:
        return absolute(opts.nginx_conf_dir)
    if opts.site:
        for parent in absolute(opts.site).parents:
            if (parent / "nginx.conf").is_file():
                return parent
    return DEFAULT_CONF_DIR


def nginx_files(
    opts: Options, fixed: ini_fix.FixedIni, ini_path: Path, conf_dir: Path
) -> tuple[str, tuple[site.Link, ...], tuple[Finding, ...], str]:
    """(main conf text, links beside it, warnings, health URL)."""
    mime = conf_dir / "mime.types"
    mime_types = str(mime) if mime.is_file() else ""
    if not opts.site:
        up = site.upstream(parse_ini(fixed.text))
        if up is None:
            raise InitError(ini_path, 0, "no socket, uwsgi-socket or http-socket nginx could "
                            "pass requests to (or pass --nginx-site)")
        listen = opts.listen or "80"
        params = conf_dir / "uwsgi_params"
        body = site.default_server(listen, up, str(params) if params.is_file() else "")
        conf = site.main_conf(body=body, origin=f"the app in {ini_path}", mime_types=mime_types)
        return conf, (), (), site.url_for(listen, opts.health_path) or ""
    site_path = absolute(opts.site)
    read_text(site_path, "--nginx-site")
    stmts = read_site(site_path, conf_dir)
    problem = site.not_a_site(stmts, str(site_path))
    if problem is not None:
        raise problem
    refs = site.conf_relative(stmts)
    for ref in refs:
        _must_exist(ref, conf_dir)
    links = site.links(refs, conf_dir)
    url = site.health_url(stmts, str(site_path), opts.health_path)
    conf = site.main_conf(
        body=site.site_include(str(site_path)), origin=str(site_path), mime_types=mime_types
    )
    return conf, links, site.prefix_relative(stmts), url


def _must_exist(ref: site.Ref, conf_dir: Path) -> None:
    target = conf_dir / (ref.head if ref.is_glob else ref.arg)
    if not os.path.lexists(target):
        raise InitError(ref.file, ref.line, (
            f"{ref.directive} {ref.arg}: {target} does not exist (nginx resolves a relative "
            f"path against the main nginx.conf's directory, {conf_dir}; pass "
            "--nginx-conf-dir if it is another)"
        ))


def parse_nginx(path: Path) -> tuple[site.Stmt, ...]:
    payload = crossplane.parse(
        str(path), single=True, check_ctx=False, catch_errors=True, comments=False
    )
    problem = site.first_error(payload)
    if problem is not None:
        raise problem
    return site.statements(payload)


def read_site(site_path: Path, conf_dir: Path) -> tuple[site.Stmt, ...]:
    """The site file's directives and those of every file it includes (their relative
    includes and paths must keep their meaning too)."""
    out: list[site.Stmt] = []
    todo: list[Path] = [site_path]
    seen: set[Path] = set()
    while todo and len(seen) < MAX_INCLUDED_FILES:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        stmts = parse_nginx(path)
        out += stmts
        for pattern in site.include_patterns(stmts, conf_dir):
            todo += [Path(p) for p in sorted(glob.glob(pattern)) if os.path.isfile(p)]
    return tuple(out)


def refuse_existing(plan: Plan) -> None:
    """Without --force: no file of the plan may exist yet (a link to the same target may)."""
    names = [name for name, _ in plan.files]
    for name in names:
        path = plan.directory / name
        if os.path.lexists(path):
            raise InitError(path, 0, "exists: fnud init overwrites nothing without --force")
    for link in plan.links:
        path = plan.directory / link.name
        if os.path.lexists(path) and not _links_to(path, link.target):
            raise InitError(path, 0, "exists: fnud init overwrites nothing without --force")


def _links_to(path: Path, target: str) -> bool:
    try:
        return os.readlink(path) == target
    except OSError:
        return False


# -- check -------------------------------------------------------------------------------


def place(directory: Path, plan: Plan) -> None:
    """Write the plan's files and links into ``directory`` (replacing what is there)."""
    files.prepare_dir(directory)
    for name, text in plan.files:
        files.write_new(directory / name, text)
    for link in plan.links:
        path = directory / link.name
        if _links_to(path, link.target):
            continue
        if os.path.lexists(path):
            path.unlink()
        os.symlink(link.target, path)


def verify(plan: Plan) -> list[Finding]:
    """Every finding for the would-be directory, staged in a temp dir and checked there."""
    with tempfile.TemporaryDirectory(prefix="fnud-init-") as tmp:
        stage = Path(tmp)
        place(stage, plan)
        try:
            config = load_config(stage / "fnud.toml")
        except ConfigError as exc:  # a bug of fnud init: say it plainly
            raise InitError(plan.directory / "fnud.toml", exc.line,
                            f"fnud init wrote a fnud.toml that does not parse: {exc.message}"
                            ) from None
        found = checks.check_config(config, check_ports=False)
        found += port_findings(config, plan)
        if not any(f.is_error for f in found):
            found += import_app(config, plan)
        return [_relocated(f, stage, plan) for f in found]


def _relocated(finding: Finding, stage: Path, plan: Plan) -> Finding:
    """A finding about the staged files, told about the user's: the original ini's line
    numbers, the directory fnud init writes."""
    def moved(text: str) -> str:
        return text.replace(str(stage), str(plan.directory))

    if finding.path == str(stage / "uwsgi.ini"):
        path, line = plan.ini_label, plan.fixed.original_line(finding.line)
    else:
        path, line = moved(finding.path), finding.line
    return Finding(path, line, finding.severity, moved(finding.message), moved(finding.hint))


def _name(pid: int) -> str:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).name()
    return ""


def _master(pids: set[int]) -> int:
    """The parent among processes sharing a socket (uWSGI's or nginx's master)."""
    for pid in sorted(pids):
        with contextlib.suppress(psutil.Error):
            if psutil.Process(pid).ppid() not in pids:
                return pid
    return min(pids)


def port_findings(config: Config, plan: Plan) -> list[Finding]:
    """Ports in use: by the app's old uWSGI or nginx a warning (how to stop them), by
    anything else an error, as ``fnud check`` says it."""
    out = []
    own = ports_free.stack_pids(config)
    for item in ports_free.wanted(gather(config)):
        try:
            problem = ports.in_use(item.address)
        except (OSError, OverflowError, ValueError) as exc:
            problem = str(exc)
        if not problem:
            continue
        holders = ports_free.listeners().get(item.address.port, set())
        if holders and not holders - own:
            continue  # this config's own running stack
        names = {_name(pid) for pid in holders - own}
        if len(names) == 1 and (name := names.pop()) in OLD_PROGRAMS:
            pid = _master(holders - own)
            hint = report.stop_hint(
                name, pid, nginx_unit=ports.service_of(pid) == ports.NGINX_UNIT.name,
                pidfile=plan.fixed.pidfile,
            )
            out.append(warning(
                item.path, item.line, f"{item.label} ({item.address}): held by the app's old "
                f"{name} (pid {pid}); stop it before `fnud start`", hint,
            ))
            continue
        out.append(error(item.path, item.line, f"{item.label} ({item.address}): {problem}",
                         ports.holder(item.address.port).how_to_free))
    return out


def import_app(config: Config, plan: Plan) -> list[Finding]:
    """The app preflight (and the smoke GET of the health path), through the gate."""
    from supervisor.reload.gate import Gate, Refused, Request
    from supervisor.stack.plan import Plan as StackPlan

    async def through_gate() -> None:
        stack_plan = StackPlan(config, os.environ)
        await Gate(lambda: stack_plan).run(Request(nginx=False, app=True, reread=False))

    try:
        asyncio.run(through_gate())
    except Refused as exc:
        fixed = parse_ini(plan.fixed.text)
        app = options.last(fixed, options.MODULE) or options.last(fixed, options.WSGI_FILE)
        line = app.line if app is not None else fixed.section_line
        return [error(config.uwsgi.ini, line, str(exc.failure), _preflight_hint(config, exc))]
    return []


def _preflight_hint(config: Config, exc: Exception) -> str:
    hints = []
    if "smoke check" in str(exc):
        hints.append("--health-path names a path the app answers with 2xx/3xx")
    if os.geteuid() == 0 and config.fnud.user:
        hints.append(f"imported as {config.fnud.user}, the workers' user: --user changes it")
    return "; ".join(hints)


def write(plan: Plan) -> None:
    place(plan.directory, plan)
