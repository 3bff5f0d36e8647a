"""The shared page: who is let in (passwords, tokens, sessions that expire), same-origin
uploads, rate limits, security headers, the audit log, and no network page without users."""

from __future__ import annotations

import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from braintumor.inference.web.auth import Users, add_user
from tests.conftest import ROOT, free_port
from tests.dicom_studies import CANARY

PASSWORD = "correct horse battery"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start(ckpt, users: Path, tmp: Path, *extra: str):
    port = free_port()
    env = {**os.environ, "BRAINTUMOR_STUDY_SALT_FILE": str(tmp / "salt")}
    cmd = [sys.executable, "-m", "braintumor", "app", str(ckpt), "--port", str(port),
           "--device", "cpu", "--threads", "1", "--users", str(users), *extra]  # fmt: skip
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        if process.poll() is not None:
            pytest.fail(f"the app exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/login", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.25)
    process.terminate()
    pytest.fail("the app did not answer within 60 s")


def call(url, path, data=None, headers=None, opener=None, method=None):
    request = urllib.request.Request(
        url + path,
        data=data,
        headers=headers or {},
        method=method or ("POST" if data is not None else "GET"),
    )
    opener = opener or urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def login(url, name, password, origin=True):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
    body = urllib.parse.urlencode({"user": name, "password": password}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if origin:
        headers["Origin"] = url
    status, _, _ = call(url, "/login", body, headers, opener)
    return status, opener


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    path = tmp_path_factory.mktemp("users") / "users.txt"
    add_user(path, "ana", PASSWORD)
    token = add_user(path, "script")
    return path, token


@pytest.fixture(scope="module")
def page(trained_ckpt, users, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    process, url = start(trained_ckpt, users[0], tmp, "--rate-limit", "3", "--audit-log",
                         str(tmp / "audit.jsonl"))  # fmt: skip
    yield url, tmp / "audit.jsonl"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def scan(tiny_root) -> bytes:
    return sorted(tiny_root.rglob("*.jpeg"))[20].read_bytes()


def test_the_users_file_holds_no_password_and_is_private(users):
    path, token = users
    text = path.read_text()
    assert PASSWORD not in text and token not in text and oct(path.stat().st_mode)[-3:] == "600"
    found = Users.read(path)
    assert found.check_password("ana", PASSWORD) and not found.check_password("ana", "nope")
    assert not found.check_password("nobody", PASSWORD) and found.user_of_token(token) == "script"


def test_nobody_gets_in_without_credentials_and_wrong_ones_get_one_answer(page):
    url, _ = page
    status, headers, _ = call(url, "/")
    assert status == 303 and headers["location"] == "/login"
    assert call(url, "/api/info")[0] == 401
    for name, password in (("ana", "wrong password"), ("nobody", PASSWORD)):
        status, _ = login(url, name, password)
        assert status == 401
    body_a = call(url, "/login", urllib.parse.urlencode({"user": "ana", "password": "x"}).encode(),
                  {"Origin": url})[2]  # fmt: skip
    body_b = call(url, "/login", urllib.parse.urlencode({"user": "zed", "password": "x"}).encode(),
                  {"Origin": url})[2]  # fmt: skip
    answers = {body_a, body_b}
    assert len(answers) == 1  # no hint which part was wrong
    status, _, _ = call(url, "/api/info", headers={"Authorization": "Bearer not-a-token"})
    assert status == 401


def test_a_logged_in_user_and_a_token_are_let_in_and_uploads_must_be_same_origin(page, users, scan):
    url, audit = page
    status, opener = login(url, "ana", PASSWORD)
    assert status == 303
    assert call(url, "/", opener=opener)[0] == 200
    ok = call(url, "/api/predict", scan, {"Origin": url, "X-Filename": f"{CANARY}.jpeg"},
              opener)  # fmt: skip
    assert ok[0] == 200 and "top" in json.loads(ok[2])
    assert call(url, "/api/predict", scan, {}, opener)[0] == 403  # no Origin
    assert call(url, "/api/predict", scan, {"Origin": "http://evil.example"}, opener)[0] == 403
    status, _, body = call(url, "/api/predict", scan,
                           {"Authorization": f"Bearer {users[1]}"})  # fmt: skip
    assert status == 200, body
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert {r["user"] for r in records} >= {"ana", "script"}
    assert all(set(r) == {"time", "user", "model", "study", "answer", "confidence", "seconds",
                          "status"} for r in records)  # fmt: skip
    assert CANARY not in audit.read_text() and len({r["model"] for r in records}) == 1


def test_uploads_are_rate_limited_per_user(page, users, scan):
    url, _ = page
    token = {"Authorization": f"Bearer {users[1]}"}
    codes = [call(url, "/api/predict", scan, token)[0] for _ in range(4)]
    assert 429 in codes and codes[0] in (200, 429)


def test_every_response_carries_the_security_headers(page):
    url, _ = page
    for path in ("/login", "/", "/api/info"):
        headers = {k.lower(): v for k, v in call(url, path)[1].items()}
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"


def test_sessions_expire(trained_ckpt, users, tmp_path):
    process, url = start(trained_ckpt, users[0], tmp_path, "--session-minutes", "0.02")
    try:
        status, opener = login(url, "ana", PASSWORD)
        assert status == 303 and call(url, "/api/info", opener=opener)[0] == 200
        time.sleep(1.5)
        assert call(url, "/api/info", opener=opener)[0] == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_network_page_without_users_refuses_to_start(trained_ckpt):
    done = subprocess.run([sys.executable, "-m", "braintumor", "app", str(trained_ckpt),
                           "--host", "0.0.0.0", "--port", str(free_port())], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "--users" in done.stderr and "Traceback" not in done.stderr


def test_adduser_reads_the_password_from_stdin_and_prints_a_token_once(tmp_path):
    path = tmp_path / "u.txt"
    done = subprocess.run([sys.executable, "-m", "braintumor", "app", "adduser", str(path),
                           "bo"], input=PASSWORD + "\n", cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0 and Users.read(path).check_password("bo", PASSWORD)
    done = subprocess.run([sys.executable, "-m", "braintumor", "app", "adduser", str(path),
                           "bot", "--token"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    token = done.stdout.strip().splitlines()[-1]
    assert Users.read(path).user_of_token(token) == "bot" and token not in path.read_text()
    short = subprocess.run(
        [sys.executable, "-m", "braintumor", "app", "adduser", str(path), "cy"],
        input="short\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert short.returncode == 2 and "too short" in short.stderr


def test_logins_are_rate_limited_and_logout_or_a_forged_cookie_lets_nobody_in(page):
    url, _ = page
    status, opener = login(url, "ana", PASSWORD)
    assert status == 303 and call(url, "/api/info", opener=opener)[0] == 200
    assert call(url, "/logout", b"", {"Origin": url}, opener)[0] == 303
    assert call(url, "/api/info", opener=opener)[0] == 401
    forged = {"Cookie": "braintumor_session=" + "A" * 43}
    assert call(url, "/api/info", headers=forged)[0] == 401
    huge = urllib.parse.urlencode({"user": "ana", "password": "x" * 10_000}).encode()
    assert call(url, "/login", huge, {"Origin": url})[0] == 413
    codes = [login(url, "ana", f"wrong {k}")[0] for k in range(12)]
    assert 429 in codes and set(codes) <= {401, 429}


def test_concurrent_uploads_are_each_answered_and_audited_once(trained_ckpt, users, scan,
                                                               tmp_path):  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    audit = tmp_path / "audit.jsonl"
    process, url = start(trained_ckpt, users[0], tmp_path, "--rate-limit", "100",
                         "--audit-log", str(audit))  # fmt: skip
    try:
        token = {"Authorization": f"Bearer {users[1]}"}
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: call(url, "/api/predict", scan, token)[0], range(16)))
        assert codes == [200] * 16
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        assert len(records) == 16 and {r["status"] for r in records} == {200}
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_malformed_users_file_is_refused_naming_the_line(tmp_path):
    from braintumor.errors import UsageError

    path = tmp_path / "users.txt"
    path.write_text("ana:scrypt:00:11\nbob plain password\n")
    with pytest.raises(UsageError, match="line 2: not a user line"):
        Users.read(path)


def test_adding_a_user_again_replaces_the_old_password(tmp_path):
    path = tmp_path / "users.txt"
    add_user(path, "ana", PASSWORD)
    add_user(path, "ana", "another long password")
    users = Users.read(path)
    assert users.check_password("ana", "another long password")
    assert not users.check_password("ana", PASSWORD) and path.read_text().count("ana:") == 1
