"""POST /api/notify/site_visit: log a visit from the app to the corporate site."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ccweb.permissions import ensure_can_act_for
from segments.serializers import ErrorSerializer
from visits.models import SiteVisit
from visits.serializers import SiteVisitCreateSerializer, SiteVisitSerializer

User = get_user_model()

UNKNOWN_USER = {"user_id": ["Unknown user."]}


class SiteVisitView(APIView):
    @extend_schema(
        summary="Log a visit to the corporate site",
        description=(
            "user_id must be the caller's own id unless the caller is staff or "
            "a service account. An id with no user behind it is a 400 on "
            "user_id."
        ),
        request=SiteVisitCreateSerializer,
        responses={
            201: SiteVisitSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Invalid input."),
            401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
            403: OpenApiResponse(ErrorSerializer, description="Another user's id."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = SiteVisitCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id = serializer.validated_data["user_id"]
        ensure_can_act_for(request.user, user_id)

        # Staff may name any id; the caller's own id needs no look-up.
        if user_id != request.user.pk and not User.objects.filter(pk=user_id).exists():
            raise ValidationError(UNKNOWN_USER)
        try:
            with transaction.atomic():
                visit = SiteVisit.objects.create(
                    user_id=user_id, source=serializer.validated_data["source"]
                )
        except IntegrityError:
            # The user was deleted between the check and the insert.
            raise ValidationError(UNKNOWN_USER) from None

        return Response(SiteVisitSerializer(visit).data, status=status.HTTP_201_CREATED)
