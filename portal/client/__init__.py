"""Pipeline clients of the portal: ``api`` (stdlib-only, usable inside Nuke) and the ``portal-client`` CLI."""
