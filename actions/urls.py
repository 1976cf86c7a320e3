"""URL routes of the actions app."""

from django.urls import path

from actions.views import ActionBatchView, ActionView

urlpatterns = [
    path("actions", ActionView.as_view(), name="actions"),
    path("actions/batch", ActionBatchView.as_view(), name="actions-batch"),
]
