"""state.json: one typed reader and writer; the reader takes what earlier versions wrote
and never raises."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.runtime import state
from supervisor.runtime.release import Release
from supervisor.runtime.state import ProgramRecord, StackState

#: what fnud wrote before state.json had a typed reader (the same keys)
EARLIER = {
    "uwsgi": {"pid": 4242, "started": 1764950000.5},
    "nginx": {"pid": 4250, "started": 1764950001},
    "ini_digest": "ab" * 32, "nginx_digest": "cd" * 32, "generation": 3,
    "release": {"number": 3, "directory": "/srv/releases/7",
                "source": ["[uwsgi]\nchdir = /srv/current\n", {"2": "/srv/releases/7"}],
                "link": ["/srv/current", "releases/7"]},
    "sockets": {"uwsgi": {"127.0.0.1:8001": 5}, "nginx": {"127.0.0.1:8080": 6}},
}


def test_reads_what_an_earlier_fnud_wrote(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(EARLIER))
    read = state.load(path)
    assert read.programs == {
        "uwsgi": ProgramRecord(4242, 1764950000.5), "nginx": ProgramRecord(4250, 1764950001.0)
    }
    assert (read.generation, read.ini_digest) == (3, "ab" * 32)
    assert read.release == Release(
        3, "/srv/releases/7", ("[uwsgi]\nchdir = /srv/current\n", {2: "/srv/releases/7"}),
        ("/srv/current", "releases/7"),
    )
    assert read.sockets == {"uwsgi": {"127.0.0.1:8001": 5}, "nginx": {"127.0.0.1:8080": 6}}


def test_writes_the_same_keys_and_reads_them_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(EARLIER))
    first = state.load(path)
    state.save(path, first)
    rewritten = {**EARLIER, "nginx": {"pid": 4250, "started": 1764950001.0}, "others": [],
                 "release": {**EARLIER["release"], "server": ""}}  # type: ignore[dict-item]
    assert json.loads(path.read_text()) == rewritten
    assert state.load(path) == first
    assert path.stat().st_mode & 0o777 == 0o600


def test_programs_are_read_by_whatever_name_they_ran_under(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    release = Release(2, "/srv/releases/9", ("", {0: "/srv/releases/9"}), None, "gunicorn")
    state.save(path, StackState(
        programs={"gunicorn": ProgramRecord(77, 5.0), "nginx": ProgramRecord(78, 6.0)},
        generation=2, release=release, sockets={"gunicorn": {"127.0.0.1:8001": 3}},
    ))
    read = state.load(path)
    assert read.programs == {"gunicorn": ProgramRecord(77, 5.0), "nginx": ProgramRecord(78, 6.0)}
    assert read.release == release
    assert state.load(path, ("nginx",)).programs == {"nginx": ProgramRecord(78, 6.0)}


def test_missing_or_damaged_means_nothing_to_adopt(tmp_path: Path) -> None:
    assert state.load(tmp_path / "none.json") == StackState()
    broken = tmp_path / "state.json"
    for text in ("{", "[]", '{"uwsgi": {"pid": "x"}, "generation": -1, "release": 3}'):
        broken.write_text(text)
        assert state.load(broken) == StackState()


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["uwsgi", "nginx", "pid", "started", "generation", "release",
                         "sockets", "source", "link", "number", "directory", "x"]),
        inner, max_size=4),
    max_leaves=12,
))
@settings(max_examples=300, deadline=None)
def test_any_json_reads_without_raising(data: object) -> None:
    StackState.from_json(data)
