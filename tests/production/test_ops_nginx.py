"""The shipped nginx config in front of a real portal: media leave through X-Accel-Redirect only after the role
check, the internal location is unreachable from outside, static files come from STATIC_ROOT.

nginx runs the shipped site file with only its deployment facts swapped for the test's: the ports, the upstream,
the certificate pair, and the static and work roots (the two aliases).
"""

import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings

from generation.models import GenerationRequest, Variation
from tests.portal.test_ops_nginx import CERT, KEY, NGINX, SITE, need_nginx
from tests.production.conftest import AsgiServer, Service, _log_dir, free_port
from tests.production.test_production_loop import ask, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

ACCEL = "/_protected/work/"


def site_for_test(tmp: Path, upstream_port: int, http_port: int, https_port: int, static_root: Path,
                  work_root: Path) -> str:
    site = SITE.read_text()
    swaps = {
        "server 127.0.0.1:8001;\n    server 127.0.0.1:8002;": f"server 127.0.0.1:{upstream_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        CERT: str(tmp / "cert.pem"),
        KEY: str(tmp / "key.pem"),
        "alias /var/lib/parallel-track/static/;": f"alias {static_root}/;",
        "alias /shows/.parallel-track/work/;": f"alias {work_root}/;",
    }
    for old, new in swaps.items():
        assert site.count(old) == 1, f"the shipped site no longer has {old!r}"
        site = site.replace(old, new)
    return site


class Nginx(Service):
    def __init__(self, tmp: Path, site: str):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=pt.studio.lan", "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        (tmp / "site.conf").write_text(site)
        (tmp / "nginx.conf").write_text(
            f"user root;\ndaemon off;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nevents {{}}\n"
            f"http {{\n    include /etc/nginx/mime.types;\n    access_log off;\n    include {tmp}/site.conf;\n}}\n")
        super().__init__("nginx", [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(tmp / "nginx.conf")],
                         {"PATH": "/usr/sbin:/usr/bin:/bin"}, _log_dir())


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is an answer to look at, not to follow


def fetch(url: str, cookie: str = "") -> tuple[int, bytes, dict]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(_Stay, urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def session_cookie(user, service_env: dict) -> str:
    """A session the server accepts: its auth hash made with the server's SECRET_KEY."""
    client = Client()
    with override_settings(SECRET_KEY=service_env.get("SECRET_KEY") or settings.SECRET_KEY):
        client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def test_media_through_nginx_after_the_role_check(service_env, celery_worker, api_for, compositor, producer, outsider,
                                                  shot, show_model, tmp_path):
    need_nginx()
    static_root = Path(settings.STATIC_ROOT)
    static_root.mkdir(parents=True, exist_ok=True)
    (static_root / "probe.txt").write_text("collected static file\n")
    server = AsgiServer(dict(service_env, PT_MEDIA_ACCEL_PREFIX=ACCEL))
    http_port, https_port = free_port(), free_port()
    nginx = Nginx(tmp_path, site_for_test(tmp_path, server.port, http_port, https_port, static_root,
                                          Path(settings.WORK_ROOT).resolve()))
    base = f"https://127.0.0.1:{https_port}"
    try:
        nginx.wait_until(lambda: fetch(f"{base}/login/")[0] == 200, "proxying to the portal", timeout=30)
        request_id = ask(api_for(compositor), shot, show_model, count=1, steps=1)["id"]
        wait_for(lambda: GenerationRequest.objects.get(pk=request_id).status == "review", "the variation",
                 timeout=180, interval=0.5)
        variation = Variation.objects.get(request_id=request_id)
        url = f"{base}/media/variations/{variation.pk}/proxy/1001.jpg"
        engine_proxy = Path(variation.work_dir) / "proxy" / "incontext.1001.jpg"

        status, body, headers = fetch(url, session_cookie(producer, service_env))
        assert status == 200 and body == engine_proxy.read_bytes(), (status, body[:200])
        assert headers["Content-Type"] == "image/jpeg" and "X-Accel-Redirect" not in headers
        assert headers["Cache-Control"] == "private, max-age=3600"

        assert fetch(url, session_cookie(outsider, service_env))[0] == 404
        assert fetch(url)[0] == 302  # not logged in: to the login page
        relative = engine_proxy.resolve().relative_to(Path(settings.WORK_ROOT).resolve())
        assert fetch(f"{base}{ACCEL}{relative}")[0] == 404, "the internal location answered from outside"

        assert fetch(f"{base}/static/probe.txt")[:2] == (200, b"collected static file\n")
        status, _, headers = fetch(f"http://127.0.0.1:{http_port}/login/")
        assert status == 301 and headers["Location"] == "https://127.0.0.1/login/"  # plain HTTP goes to HTTPS
    finally:
        nginx.stop()
        server.stop()
