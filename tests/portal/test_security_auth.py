"""Auth hardening: login and API throttling, password validators, production refusing the public key or DEBUG,
HTTPS settings from the environment (check --deploy clean with deploy/env.example), a strict CSP that every
template keeps (no inline script, no style attribute, no event handler attribute)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.cache import cache
from django.core.exceptions import ValidationError

from portal.tokens import token_issue

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


def test_thirty_wrong_passwords_lock_the_login_and_then_the_right_one_does_not_work(client, compositor,
                                                                                    settings) -> None:
    assert client.post("/login/", {"username": "cora", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "cora", "password": "cora-pw"}).status_code == 302  # resets
    client.logout()
    answers = [client.post("/login/", {"username": "cora", "password": f"guess-{i}"}).status_code
               for i in range(30)]
    assert answers[: settings.AXES_FAILURE_LIMIT - 1] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    assert set(answers[settings.AXES_FAILURE_LIMIT:]) == {429}
    locked = client.post("/login/", {"username": "cora", "password": "cora-pw"})
    assert locked.status_code == 429 and b"Too many wrong passwords" in locked.content
    assert "_auth_user_id" not in client.session
    # Another user from the same address is not locked out by cora's attacker.
    assert client.post("/login/", {"username": "dana", "password": "dana-pw"}).status_code != 429


def test_the_api_is_throttled_per_user_and_per_address(client, compositor, director, settings) -> None:
    settings.PT_API_RATES = {"user": "3/min", "anon": "2/min"}
    cache.clear()
    try:
        _, key = token_issue(user=compositor, name="t")
        codes = [client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token {key}").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        answer = client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token {key}")
        assert answer.json()["code"] == "throttled" and int(answer["Retry-After"]) > 0
        # Guessed tokens from one address: refused, then throttled (the right key too, for a while).
        guesses = [client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token pt_guess{i}", REMOTE_ADDR="10.9.9.9")
                   .status_code for i in range(3)]
        assert guesses == [401, 401, 429]
        other = token_issue(user=director, name="u")[1]
        assert client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token {other}", REMOTE_ADDR="10.9.9.9").status_code \
            == 429
        assert client.get("/api/shows/", HTTP_AUTHORIZATION=f"Token {other}").status_code == 200  # elsewhere
    finally:
        cache.clear()


def test_passwords_are_checked_by_the_validators(client, compositor) -> None:
    for weak in ("short", "password1234", "12345678901234", "qwertyuiop123"):
        with pytest.raises(ValidationError):
            validate_password(weak, user=compositor)
    validate_password("tall-grey-heron-41", user=compositor)
    client.force_login(compositor)
    refused = client.post("/account/password/", {"old_password": "cora-pw", "new_password1": "short",
                                                  "new_password2": "short"})
    assert refused.status_code == 200 and b"too short" in refused.content
    compositor.refresh_from_db()
    assert compositor.check_password("cora-pw")


def _django(env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh process (not under pytest) with only the given environment."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "OPENBLAS_CORETYPE",
                                                        "OPENBLAS_L2_SIZE")}
    env.update({"HF_HUB_OFFLINE": "1", "PT_VAR_DIR": str(REPO / "var" / "test" / "settings-check"), **env_extra})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


STRONG_KEY = "Zq8!vR2#mW5$tY7^uI9&oP1*aS3(dF4)gH6_jK8+lL0=xC2-vB4~nM6"


def test_production_refuses_the_default_key_and_debug() -> None:
    production = {"REDIS_URL": "redis://127.0.0.1:6379/13"}
    no_key = _django(production, "check")
    assert no_key.returncode != 0 and "needs its own SECRET_KEY" in no_key.stderr
    debug = _django(dict(production, SECRET_KEY=STRONG_KEY, DEBUG="1"), "check")
    assert debug.returncode != 0 and "refuses DEBUG" in debug.stderr
    assert _django(dict(production, SECRET_KEY=STRONG_KEY), "check").returncode == 0
    assert _django({}, "check").returncode == 0  # the embedded default runs as it is


def _env_example() -> dict[str, str]:
    lines = (REPO / "deploy" / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.lstrip().startswith("#"))


def test_check_deploy_is_clean_with_the_example_environment(tmp_path) -> None:
    secret = tmp_path / "secret_key"
    secret.write_text(STRONG_KEY + "\n")
    env = dict(_env_example(), SECRET_KEY_FILE=str(secret))
    assert env["PT_SECURE_COOKIES"] == "1" and int(env["PT_HSTS_SECONDS"]) >= 31536000
    checked = _django(env, "check", "--deploy", "--fail-level", "WARNING")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout
    # Without the example's HTTPS settings the same check warns (the test can fail).
    bare = {k: v for k, v in env.items() if not k.startswith(("PT_SECURE", "PT_HSTS", "PT_SSL"))}
    assert _django(bare, "check", "--deploy", "--fail-level", "WARNING").returncode != 0


def test_every_answer_carries_a_strict_csp(client, compositor) -> None:
    policy = client.get("/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in policy and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    client.force_login(compositor)
    assert "Content-Security-Policy" in client.get("/")


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an event handler attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_or_script_has_what_the_csp_would_block() -> None:
    found = []
    for path in sorted((REPO / "templates").rglob("*.html")):
        text = path.read_text()
        found += [f"{path.relative_to(REPO)}: {what}" for pattern, what in INLINE if pattern.search(text)]
    for path in sorted((REPO / "static" / "js").rglob("*.js")):
        text = path.read_text()
        if re.search(r"\beval\(|new Function\(|setAttribute\(\s*[\"']style|style=", text):
            found.append(f"{path.relative_to(REPO)}: eval or a style attribute")
    assert not found, found
