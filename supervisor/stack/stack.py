"""The stack: nginx and the app server's generations, built from one plan, and the
listening sockets fnud holds for them.

The serving generation is ``app``; ``others`` are generations that are not serving
(starting, paused for a rollback, retiring). The stack keeps them, the reload decides
what happens to them.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any

from supervisor.appserver.port import AppDriver
from supervisor.config.schema import Config
from supervisor.nginx.driver import NginxDriver, prepare_prefix
from supervisor.process.events import Enqueue
from supervisor.process.program import Program
from supervisor.process.states import State
from supervisor.runtime import state as state_file
from supervisor.runtime.release import Release
from supervisor.runtime.state import Other, ProgramRecord, StackState
from supervisor.sockets.held import Holder, bound_key
from supervisor.sockets.recover import listening_fds, resync
from supervisor.stack.plan import Plan, StackError

AppProgram = Program[AppDriver]


class Stack:
    def __init__(self, plan: Plan, enqueue: Enqueue) -> None:
        self.plan = plan
        self.paths = plan.paths
        self.enqueue = enqueue
        self.app_sockets = Holder(plan.run_as)  # binds in the app's dirs as the app's user
        self.nginx_sockets = Holder()
        self.nginx: Program[NginxDriver] = Program(
            NginxDriver(plan.nginx_settings(self.nginx_sockets)), enqueue,
            start_timeout=plan.config.fnud.start_timeout,
            log_path=plan.config.fnud.log_dir / "nginx.log",
        )
        self.app: AppProgram = self.make_generation(1)
        self.others: list[AppProgram] = []
        # the serving generation's answers, (worker pid, HTTP status), once each
        # (generations share one log file; only the serving one passes them on)
        self.answers: list[Callable[[int, int], None]] = []
        # what the running processes were started or last reloaded with
        self.ini_digest = ""
        self.nginx_digest = ""

    @property
    def config(self) -> Config:
        """The config in force (a successful reload replaces the plan)."""
        return self.plan.config

    # -- generations -----------------------------------------------------------------

    def make_generation(
        self, number: int, source: Release | None = None, fresh: bool = False
    ) -> AppProgram:
        """The app server's generation ``number``: its own files in the runtime dir
        (they carry the number), on the held sockets; pinned to its release in
        generation mode. ``source``: the release to load (a rollback, an adopted
        generation); ``fresh``: a generation about to take over (ready when every
        worker accepts)."""
        driver = self.plan.app_driver(self.app_sockets, number, source, require_all=fresh)
        prog: AppProgram = Program(
            driver, self.enqueue, start_timeout=self.plan.config.fnud.start_timeout,
            log_path=self.plan.app_log(),
        )
        prog.observers.append(driver.observe)

        def serving_line(line: str) -> None:
            if prog.echo and self.answers:
                seen = driver.answer(line)
                if seen is not None:
                    for observe in self.answers:
                        observe(*seen)

        prog.observers.append(serving_line)
        return prog

    @property
    def generation(self) -> int:
        return self.app.driver.number

    def promote(self, prog: AppProgram) -> AppProgram:
        """Make ``prog`` the serving generation; return the one it replaces (which joins
        ``others`` and stops following the shared log)."""
        old = self.app
        if prog in self.others:
            self.others.remove(prog)
        self.others.append(old)
        self.app = prog
        prog.take_over_log(old)  # no line of the switch lost or echoed twice
        old.echo, prog.echo = False, True
        return old

    def forget(self, prog: AppProgram) -> None:
        """A generation that is not serving is gone for good (stopped or never ready)."""
        if prog in self.others:
            self.others.remove(prog)
        prog.unfollow()
        prog.driver.discard()

    def program_for(self, name: str, pid: int) -> Program[Any]:
        """The program an event's PID belongs to (the serving one when none matches)."""
        if name == self.nginx.name:
            return self.nginx
        for prog in self.others:
            if prog.pid == pid:
                return prog
        return self.app

    @property
    def programs(self) -> dict[str, Program[Any]]:
        """The programs the stack runs, in start order."""
        if self.plan.config.balancer:  # nginx alone
            return {self.nginx.name: self.nginx}
        return {self.app.name: self.app, self.nginx.name: self.nginx}

    def adopt_generation(self, number: int, release: Release | None) -> None:
        """The serving generation is number ``number`` (adopted after a daemon restart),
        loading ``release`` (what it pinned, for a rollback from it)."""
        self.app = self.make_generation(number, release)

    def stray(self, other: Other) -> AppProgram:
        """A generation a killed daemon left that was not serving: watched, to be
        stopped (resumed first when it was paused)."""
        driver = self.plan.app_driver(self.app_sockets, other.generation, paused=other.paused)
        prog: AppProgram = Program(driver, self.enqueue, log_path=self.plan.app_log())
        prog.echo = False
        self.others.append(prog)
        return prog

    # -- a new plan --------------------------------------------------------------------

    def apply(self, plan: Plan) -> None:
        """Take a plan that passed every check: later spawns use its settings. In
        generation mode the serving generation keeps what it was started with (its
        respawns load its pinned release) and the next generation takes the new."""
        self.plan = plan
        self.nginx.use(NginxDriver(plan.nginx_settings(self.nginx_sockets)))
        if not plan.generation_mode:
            driver = self.app.driver
            self.app.use(plan.app_driver(
                self.app_sockets, driver.number, running=driver.release
            ))
        self.app.start_timeout = self.nginx.start_timeout = plan.config.fnud.start_timeout

    def prepare(self) -> None:
        """The directories nginx writes to under its prefix (its temp dirs belong to
        its workers' user)."""
        prepare_prefix(self.paths.nginx_prefix, self.plan.nginx_worker_uid())

    # -- held sockets ------------------------------------------------------------------

    def hold_sockets(self, adopted: set[str]) -> None:
        """Bind every socket the programs will inherit (raises OSError naming the
        line); adopted programs keep what they have (recovered or their own)."""
        if self.app.name not in adopted and not self.plan.config.balancer:
            self.app.driver.bind()
        if self.nginx.name not in adopted:
            self.nginx.driver.sockets(self.plan.nginx_conf)

    def holders(self) -> dict[str, Holder]:
        return {self.app.name: self.app_sockets, self.nginx.name: self.nginx_sockets}

    def held_fds(self) -> dict[str, int]:
        """{program/address: fd} of every held socket (systemd's fd store keeps them)."""
        return {
            f"{name}/{key}": fd
            for name, holder in self.holders().items()
            for key, fd in holder.fds().items()
        }

    def inherit(self, named: Mapping[str, int]) -> None:
        """Sockets systemd passed us wait to be taken by address: named as ``held_fds``
        names them (the fd store), or unnamed (a fnud.socket unit, systemd-socket-activate)
        and matched to a listen of nginx.conf or the app's config by the address they are
        bound to."""
        holders = self.holders()
        for name, fd in named.items():
            sock = socket.socket(fileno=fd)
            program, _, key = name.partition("/")
            if program not in holders or not key:
                program, key = self._owner_of(sock)
            holders[program].inherited[key] = sock

    def _owner_of(self, sock: socket.socket) -> tuple[str, str]:
        """(program, address) of an unnamed inherited socket: nginx's unless the app's
        config names that address."""
        key = bound_key(sock)
        try:
            app_keys = {spec.key for spec in self.plan.app_specs()}
        except (StackError, OSError):
            app_keys = set()
        return (self.app.name if key in app_keys else self.nginx.name), key

    def inherited(self) -> bool:
        return any(holder.inherited for holder in self.holders().values())

    def resync_nginx_sockets(self) -> None:
        """Listens an nginx reload added are taken from its master (held from now on);
        removed ones are let go."""
        if not self.nginx.running:
            return
        specs = self.nginx.driver.specs(self.plan.nginx_conf)
        missed = resync(self.nginx_sockets, self.nginx.pid, specs)
        if missed:
            self.nginx.log.warning("listens not held (nginx binds them itself)", missed=missed)

    # -- state.json --------------------------------------------------------------------

    def state(self) -> StackState:
        return StackState(
            programs={
                name: ProgramRecord(prog.pid, prog.spawned_wall)
                for name, prog in self.programs.items() if prog.running
            },
            ini_digest=self.ini_digest, nginx_digest=self.nginx_digest,
            generation=self.generation, release=self.app.driver.pinned(),
            sockets=self._inherited(),
            others=tuple(
                Other(prog.driver.number, prog.pid, prog.spawned_wall, prog.driver.paused)
                for prog in self.others if prog.running
            ),
        )

    def _inherited(self) -> dict[str, dict[str, int]]:
        """{program: {address: fd}} of the held sockets, numbered as each running master
        has them (an adopted master keeps the numbers of the daemon that started it)."""
        out = {}
        for name, holder in self.holders().items():
            prog = self.programs.get(name)
            if prog is None or not prog.running:
                continue
            keys = frozenset(holder.held)
            paths = frozenset(key for key in keys if key.startswith("/"))
            fds = listening_fds(prog.pid, paths)
            out[name] = {key: fd for key, fd in fds.items() if key in keys}
        return out

    def save_state(self) -> None:
        """Record the running PIDs so that a restarted daemon can adopt them."""
        state_file.save(self.paths.state, self.state())

    def load_state(self) -> StackState:
        return state_file.load(self.paths.state, tuple(self.holders()))

    def clear_state(self) -> None:
        """The stack stopped: nothing to adopt, and the app server generations that are
        down leave no files in the runtime dir."""
        state_file.clear(self.paths.state)
        for prog in (self.app, *self.others):
            if prog.state is State.STOPPED:
                prog.driver.discard()
