"""Example Flask app served by fnud (nginx -> uWSGI -> Flask)."""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify, request

app = Flask(__name__)

GREETING = "Hello from fnud"


@app.route("/")
def index() -> str:
    return f"{GREETING}\n"


@app.route("/pid")
def pid() -> dict[str, int]:
    """Which uWSGI worker answered: lets tests see that every worker was replaced."""
    return {"pid": os.getpid()}


@app.route("/sleep")
def sleep() -> dict[str, float]:
    """Sleep ?s=SECONDS (at most 120) before answering: an in-flight request for tests."""
    seconds = min(float(request.args.get("s", "1")), 120.0)
    time.sleep(seconds)
    return {"slept": seconds}


@app.route("/upload", methods=["POST"])
def upload() -> dict[str, int]:
    """Read the whole body: a large one goes through nginx's temp files."""
    return {"received": len(request.get_data())}


@app.route("/health")
def health() -> object:
    return jsonify(status="ok", pid=os.getpid())
