from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ccweb import health, metrics

handler400 = "ccweb.api.bad_request"
handler403 = "ccweb.api.permission_denied"
handler404 = "ccweb.api.not_found"
handler500 = "ccweb.api.server_error"

# Django tries the routes in order, and no two of them overlap: the busiest
# come first, so they are found after the fewest comparisons.
urlpatterns = [
    path("health", health.liveness, name="health"),
    path("api/", include("actions.urls")),
    path("api/", include("segments.urls")),
    path("api/", include("visits.urls")),
    path("api/", include("ccweb.accounts.urls")),
    path("health/ready", health.readiness, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]
