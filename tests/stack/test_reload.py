"""The gated reload against the real stack, under a concurrent local load."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable

from testkit.load import Load
from testkit.stackdir import StackDir, wait_for


def test_reloads_under_load_lose_nothing_and_replace_every_worker(
    running_chain: StackDir,
) -> None:
    running = running_chain
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(50)
        for _ in range(3):
            before = running.worker_pids()
            result = running.fnud("reload")
            assert result.returncode == 0, result.stdout + result.stderr
            after = running.worker_pids()
            assert len(after) == 3 and not before & after, (before, after)
            assert "3 uWSGI workers replaced (chain reload)" in result.stdout
            assert result.stdout.count("uwsgi worker ") == 3  # one progress line each
            load.wait_requests(50)
        outcome = load.stop()
    assert outcome.requests > 150
    assert outcome.failures == 0, outcome.summary()


def test_broken_app_is_refused_and_old_workers_keep_serving(running: StackDir) -> None:
    before = running.worker_pids()
    good = running.app.read_text()
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        running.app.write_text(good + "\n\ndef broken(:\n    pass\n")
        result = running.fnud("reload")
        load.wait_requests(30)
        outcome = load.stop()
    assert result.returncode == 1
    assert "refused" in result.stderr and "SyntaxError" in result.stderr
    assert f"{running.app}:" in result.stderr  # file:line of the error
    assert running.worker_pids() == before
    assert outcome.failures == 0, outcome.summary()
    last = running.status()["last_reload"]
    assert last["result"] == "refused"  # type: ignore[index]
    # fixing the code makes the next reload go through
    running.app.write_text(good)
    assert running.fnud("reload").returncode == 0
    assert not running.worker_pids() & before


def test_app_missing_callable_is_refused(running: StackDir) -> None:
    running.ini.write_text(running.ini.read_text().replace("callable = app", "callable = nope"))
    result = running.fnud("reload")
    assert result.returncode == 1
    assert "no callable named 'nope'" in result.stderr


def test_broken_nginx_conf_is_refused_and_nginx_untouched(running: StackDir) -> None:
    before = running.worker_pids("nginx")
    uwsgi_before = running.worker_pids()
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        running.nginx_conf.write_text(
            running.nginx_conf.read_text().replace("access_log off;", "access_log off\n")
        )
        result = running.fnud("reload")
        load.wait_requests(30)
        outcome = load.stop()
    assert result.returncode == 1
    assert "nginx -t failed" in result.stderr and str(running.nginx_conf) in result.stderr
    assert running.worker_pids("nginx") == before
    assert running.worker_pids() == uwsgi_before  # refused before anything was signalled
    assert outcome.failures == 0, outcome.summary()


def test_changed_nginx_conf_reloads_nginx_with_new_workers(running: StackDir) -> None:
    before = running.worker_pids("nginx")
    running.nginx_conf.write_text(
        running.nginx_conf.read_text().replace("worker_processes 2;", "worker_processes 1;")
    )
    result = running.fnud("reload", "--nginx")
    assert result.returncode == 0, result.stderr
    assert "nginx reloaded" in result.stdout
    after = wait_for(
        lambda: (lambda pids: pids if len(pids) == 1 else None)(running.worker_pids("nginx")),
        message="old nginx workers to retire",
    )
    assert not before & after  # type: ignore[operator]


def test_unchanged_nginx_conf_is_not_reloaded(running: StackDir) -> None:
    before = running.worker_pids("nginx")
    result = running.fnud("reload")
    assert result.returncode == 0
    assert "nginx unchanged" in result.stdout
    assert running.worker_pids("nginx") == before


def test_request_in_flight_completes_across_reload(running: StackDir) -> None:
    flight = running.request_in_flight(3)
    result = running.fnud("reload")
    assert result.returncode == 0, result.stderr
    status, body = flight.result()
    assert status == 200
    assert json.loads(body) == {"slept": 3.0}


def test_code_change_is_visible_on_every_worker_after_reload(running: StackDir) -> None:
    running.set_greeting("Version two")
    result = running.fnud("reload", "--app")
    assert result.returncode == 0, result.stderr
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(60)
        outcome = load.stop()
    assert outcome.failures == 0
    assert set(outcome.bodies) == {b"Version two\n"}, outcome.bodies


def test_changed_ini_does_a_graceful_reload_and_says_so(running_chain: StackDir) -> None:
    running = running_chain  # in generation mode an ini change is a new generation
    before = running.worker_pids()
    master = running.status()["programs"]["uwsgi"]["pid"]  # type: ignore[index]
    running.ini.write_text(running.ini.read_text().replace("processes = 3", "processes = 2"))
    with Load(running.url + "/", concurrency=4) as load:
        load.wait_requests(30)
        result = running.fnud("reload")
        load.wait_requests(30)
        outcome = load.stop()
    assert result.returncode == 0, result.stderr
    assert "graceful reload" in result.stdout and "ini changed" in result.stdout
    after = running.worker_pids()
    assert len(after) == 2 and not before & after
    assert running.status()["programs"]["uwsgi"]["pid"] == master  # type: ignore[index]
    assert outcome.failures == 0, outcome.summary()


def test_concurrent_reloads_are_serialised(running: StackDir) -> None:
    results: list[int] = []

    def one() -> None:
        results.append(running.fnud("reload").returncode)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [0, 0, 0]


def test_sighup_to_daemon_reloads(running: StackDir) -> None:
    before = running.worker_pids()
    daemon = running.status()["daemon"]["pid"]  # type: ignore[index]
    os.kill(daemon, 1)
    wait_for(lambda: not running.worker_pids() & before, timeout=60, message="workers replaced")


def _touch(path: os.PathLike[str]) -> None:
    with open(path, "a"):
        pass
    now = time.time() + 1
    os.utime(path, (now, now))


def test_touch_chain_reload_goes_through_the_gate(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(extra_ini="touch-chain-reload = %dreload.touch")
    touch = stack.root / "reload.touch"
    _touch(touch)
    stack.start()
    # uWSGI itself must not watch it: the rendered ini has it commented out
    rendered = (stack.run / "uwsgi-1.ini").read_text()
    assert "; [fnud: handled by fnud] touch-chain-reload" in rendered
    before = stack.worker_pids()
    _touch(touch)
    wait_for(lambda: not stack.worker_pids() & before, timeout=60, message="touch reload")
    wait_for(
        lambda: (stack.status().get("last_reload") or {}).get("result") == "ok",  # type: ignore[union-attr]
        message="last reload ok",
    )
    # a touch onto broken code is refused and logged; the old workers keep serving
    current = stack.worker_pids()
    stack.app.write_text(stack.app.read_text() + "\nimport nonexistent_module_xyz\n")
    with Load(stack.url + "/", concurrency=2) as load:
        _touch(touch)
        wait_for(
            lambda: (stack.status().get("last_reload") or {}).get("result") == "refused",  # type: ignore[union-attr]
            timeout=60,
            message="refused reload",
        )
        load.wait_requests(20)
        outcome = load.stop()
    assert stack.worker_pids() == current
    assert outcome.failures == 0, outcome.summary()
    last = stack.status()["last_reload"]
    assert "nonexistent_module_xyz" in last["message"]  # type: ignore[index]
    assert "touched" in last["reason"]  # type: ignore[index]
    assert "reload refused" in stack.daemon_log()


def test_a_stuck_chain_reload_fails_naming_the_worker(
    stack_factory: Callable[..., StackDir],
) -> None:
    stack = stack_factory(processes=1, reload_timeout=2.0, reload_mode="chain")
    stack.add_hold_route()
    stack.start()
    before = stack.worker_pids()
    flight = stack.request_held()  # in flight until the reload has failed, however long
    result = stack.fnud("reload", "--app")
    assert result.returncode == 1
    assert "reload failed" in result.stderr and "worker 1 (pid" in result.stderr
    assert stack.status()["last_reload"]["result"] == "failed"  # type: ignore[index]
    stack.release_held()
    status, body = flight.result()
    assert (status, json.loads(body)) == (200, {"released": True})  # the worker finished it
    # uWSGI finishes the chain on its own once the request is done (the new worker has
    # its app: a stop while a lazy worker still loads it waits out stop_timeout)
    def chain_done() -> bool:
        workers = stack.programs()["uwsgi"]["workers"]
        return not {w["pid"] for w in workers} & before and all(
            w["accepting"] and w["apps"] for w in workers
        )

    wait_for(chain_done, timeout=30, message="chain done")
