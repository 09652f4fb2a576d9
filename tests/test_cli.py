"""The `govflow` command as people use it: the README walkthrough, errors and exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from engine.cli import main
from engine.store import statistics
from tests.conftest import _is_pg

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _walkthrough() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Walkthrough", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "the README walkthrough has no sh block"
    return match.group(1)


def test_the_readme_walkthrough_works_as_written(database_url, app, tmp_path):
    script = "set -euo pipefail\n" + _walkthrough() + '\ngovflow show "$CASE" --json > "$OUT"\n'
    env = {
        **os.environ,
        "GOVFLOW_DATABASE_URL": database_url,
        "OUT": str(tmp_path / "case.json"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    activate = ROOT / ".venv" / "bin" / "activate"
    if not activate.exists():  # the suite runs from another environment than make's .venv
        script = script.replace(". .venv/bin/activate\n", "")
    result = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    case = json.loads((tmp_path / "case.json").read_text(encoding="utf-8"))
    assert case["status"] == "completed"
    assert case["business_key"] == "JR-2026-0001"
    assert case["variables"]["approved"] is True
    assert [t["assignee"] for t in case["tasks"]] == ["wang", "li", "zhao", "sun", "wang"]
    assert "joint_review version 1 deployed" in result.stdout


@pytest.fixture
def cli(database_url, app):
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, ["--db", database_url, *args])
        return result.exit_code, result.stdout, result.stderr

    return run


def test_errors_go_to_stderr_with_a_non_zero_exit(cli):
    code, out, err = cli("start", "no_such_process")
    assert code == 1
    assert out == ""
    assert "error: no process definition 'no_such_process' is deployed" in err
    code, _, err = cli("complete", "nope", "--as", "nobody", "--data", "{not json")
    assert code == 1
    assert "--data is not valid JSON" in err
    code, _, err = cli("show", "00000000-0000-0000-0000-000000000000")
    assert (code, err.strip()) == (1, "error: no instance 00000000-0000-0000-0000-000000000000")


def test_departments_and_users(cli):
    code, out, _ = cli("departments", "add", "notary", "--name", "公证处")
    assert (code, out) == (0, "notary\t公证处\n")
    code, _, err = cli("departments", "add", "notary", "--name", "公证处")
    assert (code, err.strip()) == (1, "error: department 'notary' already exists")
    code, out, _ = cli("departments", "list", "--json")
    codes = [d["code"] for d in json.loads(out)]
    assert "notary" in codes and "amr" in codes and len(codes) >= 25
    code, out, _ = cli(
        "users", "add", "qian", "--role", "clerk", "--dept", "notary", "--password", "s3cret"
    )
    assert (code, out) == (0, "qian\tclerk\tnotary\n")
    code, _, err = cli("users", "add", "zhou", "--role", "clerk")
    assert code == 1 and "a clerk must belong to at least one department" in err
    code, _, err = cli("users", "add", "zhou", "--role", "boss", "--dept", "amr")
    assert code == 1 and "unknown role 'boss'" in err


def test_deploy_refusal_prints_each_problem_with_file_and_line(cli, tmp_path):
    bad = tmp_path / "bad.bpmn"
    bad.write_text(
        (ROOT / "processes" / "joint_review.bpmn")
        .read_text(encoding="utf-8")
        .replace('camunda:formKey="joint_pickup"', 'camunda:formKey="missing_form"'),
        encoding="utf-8",
    )
    code, out, err = cli("deploy", str(bad), str(ROOT / "forms"))
    assert code == 1
    assert "nothing was deployed" in err
    assert re.search(
        rf"{re.escape(str(bad))}:\d+: userTask 'pickup' \(统一出件\) uses form 'missing_form'", err
    )
    code, out, _ = cli("definitions", "list")
    assert out == ""


def test_start_reads_vars_as_json_when_it_can(cli):
    cli("deploy", str(ROOT / "processes"), str(ROOT / "forms"))
    code, out, err = cli(
        "start",
        "joint_review",
        "--var",
        "count=3",
        "--var",
        "name=张三",
        "--var",
        'flags={"vip": true}',
    )
    assert code == 0, err
    code, out, _ = cli("show", out.strip(), "--json")
    variables = json.loads(out)["variables"]
    assert variables == {"count": 3, "name": "张三", "flags": {"vip": True}}


def test_the_installed_entry_point_runs(database_url, app):
    govflow = Path(sys.executable).parent / "govflow"
    result = subprocess.run(
        [str(govflow), "--db", database_url, "departments", "list"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "amr\t市场监督管理局" in result.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(base: str, seconds: float = 30) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{base}/openapi.json", timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_readme_curl_examples_work_against_a_served_api(database_url, tmp_path):
    """What `make run` does (init, deploy, demo-seed, serve), then the README's curl block."""

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "GOVFLOW_DATABASE_URL": database_url}
    for step in (["init"], ["deploy", "processes/", "forms/"], ["demo-seed"]):
        done = subprocess.run(
            [str(bin_dir / "govflow"), *step],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    assert "password 'govflow-demo'" in done.stdout
    port = _free_port()
    server = subprocess.Popen(
        [str(bin_dir / "govflow"), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base)
        section = README.read_text(encoding="utf-8").split("## The HTTP API, with curl", 1)[1]
        block = re.search(r"```sh\n(.*?)```", section, re.DOTALL).group(1)
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + block],
            cwd=ROOT,
            env={**env, "GOVFLOW": base},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert json.loads(lines[0])["departments"] == ["center"]
        assert json.loads(lines[1])["assignee"] == "center_clerk"
        assert json.loads(lines[2])["state"] == json.loads(lines[3])["state"] == "completed"
        assert lines[-1] == "running"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_demo_users_go_only_into_an_empty_database(cli, app):
    code, out, _ = cli("demo-seed")
    assert code == 0
    assert "admin " in out and "amr_clerk" in out and "center_clerk" in out
    code, out, _ = cli("demo-seed")
    assert (code, out.strip()) == (0, "users exist already; no demo users were added")
    with app.database.session() as session:
        from engine.accounts import directory

        clerk = directory.authenticate(session, "amr_clerk", "govflow-demo")
    assert clerk.departments == frozenset({"amr"})


SERVE_TWO_WORKERS = ("serve", "--workers", "2", "--no-access-log")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_serve_with_two_worker_processes_answers_from_both_without_access_log(
    database_url, tmp_path
):
    """`--workers 2` serves one database from two processes (a core each); the parent keeps
    the dispatcher and scheduler. `--no-access-log` drops the per-request line."""
    import threading
    import urllib.parse
    import urllib.request

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "GOVFLOW_DATABASE_URL": database_url}
    for step in (["init"], ["demo-seed"]):
        done = subprocess.run(
            [str(bin_dir / "govflow"), *step], cwd=ROOT, env=env, capture_output=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [str(bin_dir / "govflow"), *SERVE_TWO_WORKERS, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(base)
        form = urllib.parse.urlencode({"username": "amr_clerk", "password": "govflow-demo"})
        with urllib.request.urlopen(f"{base}/api/auth/token", data=form.encode(), timeout=10) as r:
            token = json.load(r)["access_token"]
        answers: list[str] = []

        def ask() -> None:
            request = urllib.request.Request(
                f"{base}/api/me", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                answers.append(json.load(response)["username"])

        threads = [threading.Thread(target=ask) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == ["amr_clerk"] * 20
        workers = [
            pid
            for pid in _children(server.pid)
            if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
            and b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = log.read_text()
    assert "GET /api/me" not in text
    assert "Started server process" in text


def test_db_check_says_when_autovacuum_will_not_keep_the_planner_statistics(cli, app):
    if not _is_pg():
        code, out, _ = cli("db", "check")
        assert (code, out.strip()) == (0, "ok: nothing to check on sqlite")
        return
    with app.database.engine.connect() as connection:
        server_on = connection.execute(text("SHOW autovacuum")).scalar() == "on"
    if server_on:
        code, out, _ = cli("db", "check")
        assert (code, out.strip()) == (0, "ok: autovacuum keeps the planner's statistics fresh")
    with app.database.engine.begin() as connection:
        connection.execute(text("ALTER TABLE human_tasks SET (autovacuum_enabled = off)"))
    try:
        code, _, err = cli("db", "check")
    finally:
        with app.database.engine.begin() as connection:
            connection.execute(text("ALTER TABLE human_tasks RESET (autovacuum_enabled)"))
    assert code == 1
    assert "human_tasks" in err if server_on else "off for the whole server" in err
    assert "ANALYZE" in err


def test_a_table_whose_autovacuum_is_switched_off_is_told_apart_from_other_options():
    assert statistics._disabled_on_table(["autovacuum_enabled=off"])
    assert statistics._disabled_on_table(["fillfactor=90", "autovacuum_enabled=FALSE"])
    assert not statistics._disabled_on_table(["autovacuum_enabled=true", "fillfactor=90"])
    assert not statistics._disabled_on_table(None)


def test_a_served_api_keeps_its_start_up_objects_out_of_the_garbage_collector(database_url, app):
    """Each HTTP process of `govflow serve --workers N` builds its API with this factory; the
    objects made by then are frozen, so the collector's full passes (50-65 ms with them,
    docs/performance.md, "Sunday night") skip them."""
    code = (
        "import gc\n"
        "from engine.api.asgi import app_from_environment\n"
        "before = gc.get_freeze_count()\n"
        "app_from_environment()\n"
        "print(before, gc.get_freeze_count())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "GOVFLOW_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    before, after = map(int, result.stdout.split())
    assert before == 0
    assert after > 100_000  # the engine's modules, SQLAlchemy and FastAPI with it
