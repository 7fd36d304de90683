from tests.client.live import live_portal, token_for  # noqa: F401 (fixtures)
