"""Fixtures for tests that run the real stack: stack directories that are stopped and
checked for leftover processes after every test, whatever it did."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from testkit.stackdir import (
    StackDir,
    cleaned_up,
    make_gunicorn_stack_dir,
    make_stack_dir,
)


def _factory(maker: Callable[..., StackDir]) -> Iterator[Callable[..., StackDir]]:
    """Make stack dirs; every one is stopped and checked for leftovers after the test."""
    made: list[StackDir] = []

    def make(**kwargs: object) -> StackDir:
        stack = maker(**kwargs)
        made.append(stack)
        return stack

    with cleaned_up(made):
        yield make


@pytest.fixture
def stack_factory() -> Iterator[Callable[..., StackDir]]:
    """uWSGI stacks (make_stack_dir)."""
    yield from _factory(make_stack_dir)


@pytest.fixture
def gunicorn_factory() -> Iterator[Callable[..., StackDir]]:
    """gunicorn stacks (make_gunicorn_stack_dir)."""
    yield from _factory(make_gunicorn_stack_dir)


@pytest.fixture
def stack(stack_factory: Callable[..., StackDir]) -> StackDir:
    return stack_factory()


@pytest.fixture
def running(stack: StackDir) -> StackDir:
    stack.start()
    return stack


@pytest.fixture
def running_chain(stack_factory: Callable[..., StackDir]) -> StackDir:
    """A running stack whose reloads are chain reloads (uWSGI's 'c'), as before
    generations."""
    stack = stack_factory(reload_mode="chain")
    stack.start()
    return stack
