"""Catalogue API: shows, shots and plates the caller may see."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework import generics, serializers

from portal.errors import PortalError
from portal.models import Membership, Plate, Shot, Show
from portal.selectors import shot_for_member, show_for_member

MAX_ID = 2**63 - 1  # the database's largest primary key


def query_id(request, name: str) -> int | None:
    """The optional filter ``?<name>=<id>``; anything else is a clear 400, never a silent "everything"."""
    value = request.query_params.get(name, "")
    if value == "":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_ID:
        raise PortalError(f"{name} must be an id (a positive integer), not {value[:40]!r}", code="invalid")
    return int(value)


def id_filter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, int, description=description, required=False)


class ShowSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Show
        fields = ["id", "code", "name", "working_space", "fps", "role"]

    def get_role(self, show) -> str:
        return self.context["roles"].get(show.pk, "")


class PlateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plate
        fields = ["id", "name", "path_pattern", "first_frame", "last_frame", "display_window", "data_window",
                  "channels", "colourspace", "missing_frames", "matte_pattern"]


class ShotSerializer(serializers.ModelSerializer):
    show = serializers.CharField(source="sequence.show.code", read_only=True)
    sequence = serializers.CharField(source="sequence.code", read_only=True)
    plates = PlateSerializer(many=True, read_only=True)

    class Meta:
        model = Shot
        fields = ["id", "show", "sequence", "code", "first_frame", "last_frame", "plates"]


class ShowList(generics.ListAPIView):
    serializer_class = ShowSerializer

    def get_queryset(self):
        return Show.objects.filter(memberships__user=self.request.user).order_by("code")

    def get_serializer_context(self):
        roles = dict(Membership.objects.filter(user=self.request.user).values_list("show_id", "role"))
        return {**super().get_serializer_context(), "roles": roles}


class ShotList(generics.ListAPIView):
    """The shots of one show."""

    serializer_class = ShotSerializer

    def get_queryset(self):
        show, _ = show_for_member(self.request.user, self.kwargs["show_code"])
        return (Shot.objects.filter(sequence__show=show).select_related("sequence__show")
                .prefetch_related("plates").order_by("sequence__code", "code"))


class ShotDetail(generics.RetrieveAPIView):
    serializer_class = ShotSerializer

    def get_object(self):
        return shot_for_member(self.request.user, self.kwargs["pk"])[0]
