"""Role checks on a show, shared by services, views, the API and consumers."""

from portal.errors import Forbidden
from portal.models import Role
from portal.selectors import member_role


def require_member(user, show_id: int) -> Role:
    """The user's role on the show; outsiders learn nothing, not even that the show exists."""
    return member_role(user, show_id)


def require_role(user, show_id: int, allowed: set[Role], action: str) -> Role:
    role = require_member(user, show_id)
    if role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"a {role.value} cannot {action}; it takes: {names}", code="role")
    return role
