"""Schemathesis over the whole OpenAPI document, against a live portal, with the real token of every role (and an
outsider's).

No input may make the API answer 500, and every answer must be one the document declares, in the shape it
declares. The compositor's show holds a shot with its plate, an approved model, a request in review and a
release, so the fuzzer reaches past "not found" into the real code paths.
"""

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.client.live import live_portal, token_for  # noqa: F401 (fixtures)
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db(transaction=True)
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
MAX_EXAMPLES = 25  # per operation and mode for the compositor (who can write most): the document in about a minute
OTHER_ROLES_EXAMPLES = 8  # and for each other role, whose writes are mostly refusals


@pytest.fixture
def show_with_data(compositor, director, shot, show_model):
    """A request in review, picked, signed off and released (rows only: no generation, no files)."""
    from django.utils import timezone

    from review.models import Pick, Release, SignOff

    request = request_with_done_variations(user=compositor, shot=shot, model=show_model,
                                           frames=(shot.first_frame, shot.first_frame + 1))
    variation = request.variations.first()
    pick = Pick.objects.create(request=request, variation=variation, picked_by=director)
    signoff = SignOff.objects.create(pick=pick, variation=variation, decision="approved", signed_by=compositor)
    Release.objects.create(signoff=signoff, shot=shot, task=request.task, version=1, status="done",
                           path_pattern="/publish/tst/sq010/sh010/v001/element.####.exr", released_at=timezone.now())
    request_with_done_variations(user=compositor, shot=shot, model=show_model)
    return request


@pytest.fixture
def api_schema(live_portal, token_for, compositor, show_with_data):  # noqa: F811
    # Accept: without it drf-spectacular answers YAML, even at .json.
    return schemathesis.openapi.from_url(f"{live_portal.url}/api/openapi.json", timeout=30,
                                         headers={"Accept": "application/json"})


@pytest.mark.parametrize("role", ["compositor", "director", "supervisor", "producer", "outsider"])
def test_no_input_makes_the_api_answer_500_or_break_its_schema(api_schema, live_portal, token_for, role, request):  # noqa: F811
    key = token_for(request.getfixturevalue(role))
    examples = MAX_EXAMPLES if role == "compositor" else OTHER_ROLES_EXAMPLES
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, live_portal.url, key, examples)
            except (Exception, BaseExceptionGroup) as exc:  # every operation's first (shrunk) failure, not just the first operation's
                failures.append(f"{operation.label} [{mode.value}]: {type(exc).__name__}: {exc}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation, mode: GenerationMode, base_url: str, key: str, examples: int) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case):
        response = case.call(base_url=base_url, headers={"Authorization": f"Token {key}"}, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        finally:
            _cancel_if_created(case, response, base_url, key)

    run()


def _cancel_if_created(case, response, base_url: str, key: str) -> None:
    """A request the fuzzer managed to submit is cancelled at once: its jobs must not load the server."""
    if case.method.upper() == "POST" and case.path == "/api/requests/" and response.status_code == 201:
        import requests

        requests.post(f"{base_url}/api/requests/{response.json()['id']}/cancel/",
                      headers={"Authorization": f"Token {key}"}, timeout=30)
        time.sleep(0.05)
