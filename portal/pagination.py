"""List pages of the API (apart from the error handler: drf_spectacular imports DRF's generics, which read this
setting)."""

from rest_framework import pagination

from portal.errors import PortalError

MAX_LIMIT = 1000  # a page of a list
MAX_OFFSET = 2**62  # past any row; a larger one would overflow the database's integers


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """``?limit=`` and ``?offset=`` as whole numbers in range; anything else is a 400, not a database overflow."""

    max_limit = MAX_LIMIT

    def get_limit(self, request):
        return self._bounded(request, self.limit_query_param, MAX_LIMIT, super().get_limit(request))

    def get_offset(self, request):
        return self._bounded(request, self.offset_query_param, MAX_OFFSET, super().get_offset(request))

    @staticmethod
    def _bounded(request, name: str, largest: int, parsed):
        text = request.query_params.get(name)
        if text is None:
            return parsed
        if not (text.isascii() and text.isdigit()) or int(text) > largest:
            raise PortalError(f"{name} must be a whole number from 0 to {largest}", code="invalid")
        return parsed
