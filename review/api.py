"""Review API: pick, sign off or send back, and the releases of a shot."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.models import Variation
from generation.selectors import request_for_member, variation_for_member
from portal.api import id_filter, query_id
from portal.errors import PortalError
from review import services
from review.models import Pick, Release, SignOff, SignOffDecision


class NoteInput(serializers.Serializer):
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class PickSerializer(serializers.ModelSerializer):
    picked_by = serializers.CharField(source="picked_by.username", read_only=True)

    class Meta:
        model = Pick
        fields = ["id", "request", "variation", "rejected_all", "note", "picked_by", "created_at"]


class SignOffSerializer(serializers.ModelSerializer):
    signed_by = serializers.CharField(source="signed_by.username", read_only=True)

    class Meta:
        model = SignOff
        fields = ["id", "pick", "variation", "decision", "note", "signed_by", "created_at"]


class ReleaseSerializer(serializers.ModelSerializer):
    request = serializers.IntegerField(source="signoff.variation.request_id", read_only=True)
    shot_code = serializers.CharField(source="shot.code", read_only=True)

    class Meta:
        model = Release
        fields = ["id", "request", "shot", "shot_code", "task", "version", "status", "path_pattern",
                  "manifest_path", "frames_done", "error", "created_at", "released_at"]


class VariationPick(APIView):
    @extend_schema(request=NoteInput, responses={201: PickSerializer})
    def post(self, request, pk: int):
        variation = variation_for_member(request.user, pk)
        form = NoteInput(data=request.data)
        form.is_valid(raise_exception=True)
        pick = services.pick_make(user=request.user, variation=variation, note=form.validated_data["note"])
        return Response(PickSerializer(pick).data, status=201)


class DecisionInput(NoteInput):
    variation = serializers.IntegerField(min_value=1, max_value=2**62, required=False, allow_null=True,
                                         default=None, help_text="The variation decided on, for a task without a "
                                                                 "pick; otherwise the pick's, if given")


class _Decision(APIView):
    """A compositor's decision on a request's pick: ``decision`` is what the subclass's endpoint decides."""

    decision = SignOffDecision.APPROVED

    @extend_schema(request=DecisionInput, responses={201: SignOffSerializer})
    def post(self, request, pk: int):
        form = DecisionInput(data=request.data)
        form.is_valid(raise_exception=True)
        gen_request = request_for_member(request.user, pk)
        named = form.validated_data["variation"]
        variation = None if named is None else Variation.objects.filter(pk=named, request=gen_request).first()
        if named is not None and variation is None:
            raise PortalError("no such variation on this request", code="variation")
        signoff = services.signoff_decide(user=request.user, request=gen_request, decision=self.decision,
                                          note=form.validated_data["note"], variation=variation)
        return Response(SignOffSerializer(signoff).data, status=201)


class RequestSignOff(_Decision):
    decision = SignOffDecision.APPROVED


class RequestSendBack(_Decision):
    decision = SignOffDecision.SENT_BACK


class ReleaseList(generics.ListAPIView):
    """Releases on the caller's shows (?request=<id> or ?shot=<id> narrows)."""

    serializer_class = ReleaseSerializer

    def get_queryset(self):
        qs = (Release.objects.filter(shot__sequence__show__memberships__user=self.request.user)
              .select_related("shot", "signoff__variation").order_by("-created_at", "-pk"))
        for param, field in (("request", "signoff__variation__request_id"), ("shot", "shot_id")):
            value = query_id(self.request, param)
            if value is not None:
                qs = qs.filter(**{field: value})
        return qs

    @extend_schema(parameters=[id_filter("request", "only this request's release"),
                               id_filter("shot", "only this shot's releases")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
