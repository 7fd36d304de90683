"""Role checks on a show, shared by services, views, the API and consumers."""

from portal.errors import Forbidden, NotFound
from portal.models import Role
from portal.selectors import role_on_show


def require_member(user, show_id: int) -> Role:
    """The user's role on the show; outsiders learn nothing, not even that the show exists."""
    role = role_on_show(user, show_id)
    if role is None:
        raise NotFound("not found")
    return role


def require_role(user, show_id: int, allowed: set[Role], action: str) -> Role:
    role = require_member(user, show_id)
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"a {role.value} cannot {action}; it takes: {names}", code="role")
    return role
