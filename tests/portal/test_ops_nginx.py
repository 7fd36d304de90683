"""The shipped nginx config: `nginx -t` clean, its paths those the settings make of deploy/env.example, and media
handed to nginx with X-Accel-Redirect only after the portal's role check."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from django.conf import settings

from tests.generation.test_proxies import variation  # noqa: F401 - a finished variation with its proxies

REPO = Path(settings.BASE_DIR)
SITE = REPO / "deploy" / "nginx" / "parallel-track.conf"
ENV_EXAMPLE = REPO / "deploy" / "env.example"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CERT = "/etc/parallel-track/tls/pt.studio.lan.crt"
KEY = "/etc/parallel-track/tls/pt.studio.lan.key"


def need_nginx():
    if not os.path.exists(NGINX):
        if os.getenv("CI"):
            pytest.fail("nginx is not installed (.ci/run installs Debian's nginx)")
        pytest.skip("nginx is not installed: apt-get install -y nginx")


def example_settings() -> dict:
    """STATIC_ROOT, WORK_ROOT and PT_MEDIA_ACCEL_PREFIX as the settings read them from deploy/env.example."""
    env = {"PATH": os.environ["PATH"]}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    env.pop("SECRET_KEY_FILE", None)  # a file on the studio's server; the paths do not depend on it
    env["SECRET_KEY"] = "probe-" + "k" * 60  # production refuses the public key; the paths do not depend on it
    probe = ("import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'portal.settings'; "
             "from django.conf import settings as s; "
             "print(json.dumps([str(s.STATIC_ROOT), str(s.WORK_ROOT), s.PT_MEDIA_ACCEL_PREFIX]))")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    static_root, work_root, prefix = json.loads(run.stdout.strip().splitlines()[-1])
    return {"STATIC_ROOT": static_root, "WORK_ROOT": work_root, "PREFIX": prefix}


def location_alias(conf: str, location: str) -> tuple[str, str]:
    """The alias of ``location <path> { ... }`` and the block's text."""
    block = re.search(rf"location {re.escape(location)} \{{(.*?)\}}", conf, re.S)
    assert block, f"no location {location} in {SITE.name}"
    alias = re.search(r"^\s*alias\s+(\S+);", block.group(1), re.M)
    assert alias, f"location {location} has no alias"
    return alias.group(1), block.group(1)


def test_static_and_media_locations_match_the_example_environment():
    conf = SITE.read_text()
    example = example_settings()
    static_alias, _ = location_alias(conf, "/static/")
    assert static_alias == example["STATIC_ROOT"].rstrip("/") + "/", (static_alias, example["STATIC_ROOT"])
    assert example["PREFIX"], "deploy/env.example should switch X-Accel-Redirect on"
    media_alias, block = location_alias(conf, example["PREFIX"])
    assert media_alias == example["WORK_ROOT"].rstrip("/") + "/"
    assert re.search(r"^\s*internal;", block, re.M), "the media location must be internal (portal-checked only)"
    assert "disable_symlinks on" in block


def test_nginx_t_passes_on_the_shipped_config(tmp_path):
    """The shipped site inside a minimal main config, the certificate paths pointed at a throwaway self-signed
    pair (the only change); nothing else of the site is altered."""
    need_nginx()
    site = SITE.read_text()
    assert site.count(CERT) == 1 and site.count(KEY) == 1
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=pt.studio.lan", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True, timeout=60)
    (tmp_path / "site.conf").write_text(site.replace(CERT, str(tmp_path / "cert.pem"))
                                        .replace(KEY, str(tmp_path / "key.pem")))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    include /etc/nginx/mime.types;\n    access_log off;\n    include {tmp_path}/site.conf;\n}}\n")
    run = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                          "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True, timeout=60)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "syntax is ok" in output and "test is successful" in output
    assert "[warn]" not in output and "[emerg]" not in output, output


@pytest.mark.django_db(transaction=True)
def test_media_go_through_x_accel_redirect_only_after_the_role_check(client, settings, variation,  # noqa: F811
                                                                     producer, outsider):
    settings.PT_MEDIA_ACCEL_PREFIX = "/_protected/work/"
    url = f"/media/variations/{variation.pk}/proxy/1001.jpg"
    client.force_login(outsider)
    refused = client.get(url)
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused

    client.force_login(producer)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    location = response["X-Accel-Redirect"]
    assert location.startswith("/_protected/work/") and response.content == b""  # nginx sends the bytes
    served = Path(settings.WORK_ROOT).resolve() / unquote(location.removeprefix("/_protected/work/"))
    assert served == (Path(variation.work_dir) / "proxy" / "incontext.1001.jpg").resolve()

    settings.PT_MEDIA_ACCEL_PREFIX = ""  # no nginx in front: the portal streams the same file itself
    direct = client.get(url)
    assert "X-Accel-Redirect" not in direct and direct.getvalue() == served.read_bytes()
