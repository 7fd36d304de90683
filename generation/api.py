"""Generation API: submit a request, follow it, cancel it."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import selectors, services
from generation.engine import task_kinds
from generation.models import GenerationModel, GenerationRequest, ModelStatus, Task, Variation
from portal.api import id_filter, query_id
from portal.errors import PortalError
from portal.selectors import shot_for_member

_INT32 = {"min_value": -(2**31), "max_value": 2**31 - 1}


class VariationSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    coverage_flagged = serializers.BooleanField(read_only=True)

    class Meta:
        model = Variation
        fields = ["id", "index", "label", "seed", "status", "progress", "frames_done", "gpu_seconds",
                  "flicker_ratio", "coverage", "coverage_flagged", "exr_pattern", "proxy_pattern", "element_window", "error"]


class RequestSerializer(serializers.ModelSerializer):
    variations = VariationSerializer(many=True, read_only=True)
    shot_code = serializers.CharField(source="shot.code", read_only=True)
    model_name = serializers.CharField(read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)

    class Meta:
        model = GenerationRequest
        fields = ["id", "shot", "shot_code", "task", "first_frame", "last_frame", "matte_pattern", "rect",
                  "prompt", "count", "model", "model_name", "steps", "strength", "params", "base_seed", "priority", "status",
                  "requested_by", "created_at", "settled_at", "last_seq", "variations"]


class RequestCreateSerializer(serializers.Serializer):
    shot = serializers.IntegerField(min_value=1, max_value=2**62)
    model = serializers.IntegerField(min_value=1, max_value=2**62, required=False, allow_null=True, default=None,
                                     help_text="Empty only for a task that needs no model")
    first_frame = serializers.IntegerField(**_INT32)
    last_frame = serializers.IntegerField(**_INT32)
    count = serializers.IntegerField(min_value=1, max_value=services.MAX_VARIATIONS, default=4)
    task = serializers.ChoiceField(choices=Task.choices, default=services.DEFAULT_TASK)
    matte_pattern = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    rect = serializers.ListField(child=serializers.IntegerField(**_INT32), min_length=4, max_length=4,
                                 required=False, allow_null=True, default=None)
    prompt = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    steps = serializers.IntegerField(min_value=1, max_value=services.MAX_STEPS, default=25)
    seed = serializers.IntegerField(min_value=0, max_value=2**62, required=False, allow_null=True, default=None)
    strength = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, allow_null=True, default=None,
                                      help_text="Image-to-image tasks (atmosphere, time of day): how far the region "
                                                "is re-noised; empty for the task's default")
    params = serializers.DictField(required=False, default=dict, help_text="The task's own inputs, if it takes any")
    priority = serializers.ChoiceField(
        choices=sorted(services.PRIORITIES), default=0,
        help_text="The request's place on the GPU queue: " + ", ".join(
            f"{value} {name}" for value, name in services.PRIORITIES.items())
        + "; higher runs first, equal ones take turns between people. Above 0 only for a supervisor")
    matte_release = serializers.IntegerField(
        min_value=1, max_value=2**62, required=False, allow_null=True, default=None,
        help_text="A released matte of the shot (a roto; GET /api/shots/<id>/mattes/ lists them) as the region, "
                  "instead of matte_pattern or rect")


class ModelSerializer(serializers.ModelSerializer):
    tasks = serializers.SerializerMethodField(help_text="The tasks a model of this kind can do")

    class Meta:
        model = GenerationModel
        fields = ["id", "name", "kind", "status", "manifest_hash", "tasks"]

    def get_tasks(self, model) -> list[str]:
        return [task for task, info in task_kinds.TASKS.items() if model.kind in info.kinds]


class RequestListCreate(generics.ListCreateAPIView):
    """Requests on the caller's shows, newest first (?shot=<id> narrows); POST submits a new one."""

    serializer_class = RequestSerializer

    def get_queryset(self):
        qs = (GenerationRequest.objects.filter(shot__sequence__show__memberships__user=self.request.user)
              .select_related("shot", "model", "requested_by").prefetch_related("variations")
              .order_by("-created_at", "-pk"))
        shot = query_id(self.request, "shot")
        return qs if shot is None else qs.filter(shot_id=shot)

    @extend_schema(parameters=[id_filter("shot", "only this shot's requests")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=RequestCreateSerializer, responses={201: RequestSerializer})
    def post(self, request, *args, **kwargs):
        form = RequestCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        shot, _ = shot_for_member(request.user, data["shot"])
        model = None if data["model"] is None else GenerationModel.objects.filter(pk=data["model"]).first()
        if model is None and data["model"] is not None:
            raise PortalError("no such generation model", code="model")
        created = services.request_create(
            user=request.user, shot=shot, model=model, first_frame=data["first_frame"],
            last_frame=data["last_frame"], count=data["count"], task=data["task"],
            matte_pattern=data["matte_pattern"], rect=data["rect"], prompt=data["prompt"], steps=data["steps"],
            base_seed=data["seed"], strength=data["strength"], params=data["params"],
            matte_release=data["matte_release"], priority=data["priority"])
        return Response(RequestSerializer(created).data, status=status.HTTP_201_CREATED)


class ReleasedMatteSerializer(serializers.Serializer):
    release = serializers.IntegerField(help_text="What a request names as matte_release")
    version = serializers.IntegerField()
    label = serializers.CharField()
    path = serializers.CharField(help_text="The released frame pattern")
    request = serializers.IntegerField(help_text="The request that made it")
    first_frame = serializers.IntegerField()
    last_frame = serializers.IntegerField()


class ShotReleasedMattes(APIView):
    """The shot's released mattes (rotos), newest first: what a generation request may take as its matte."""

    @extend_schema(responses={200: ReleasedMatteSerializer(many=True)})
    def get(self, request, pk: int):
        shot, _ = shot_for_member(request.user, pk)
        return Response(ReleasedMatteSerializer(selectors.released_mattes(shot.pk), many=True).data)


class RequestDetail(generics.RetrieveAPIView):
    serializer_class = RequestSerializer

    def get_object(self):
        return selectors.request_for_member(self.request.user, self.kwargs["pk"])


class RequestCancel(APIView):
    @extend_schema(request=None, responses={200: RequestSerializer})
    def post(self, request, pk: int):
        found = selectors.request_for_member(request.user, pk)
        services.request_cancel(user=request.user, request=found)
        return Response(RequestSerializer(selectors.request_for_member(request.user, pk)).data)


class ModelList(generics.ListAPIView):
    """Approved generation models usable on the caller's shows (?show=<code> narrows)."""

    serializer_class = ModelSerializer

    def get_queryset(self):
        qs = GenerationModel.objects.filter(status=ModelStatus.APPROVED,
                                            approved_shows__memberships__user=self.request.user)
        code = self.request.query_params.get("show", "")
        if code:
            qs = qs.filter(approved_shows__code=code)
        return qs.distinct().order_by("name")

    @extend_schema(parameters=[OpenApiParameter("show", str, description="only models approved on this show")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
