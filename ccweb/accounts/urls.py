"""URL routes of the accounts app (mounted under /api/)."""

from django.urls import path

from ccweb.accounts import views

urlpatterns = [
    path("auth/signup", views.SignupView.as_view(), name="auth-signup"),
    path("auth/token", views.TokenObtainView.as_view(), name="auth-token"),
    path(
        "auth/token/refresh",
        views.TokenRefreshView.as_view(),
        name="auth-token-refresh",
    ),
    path("auth/logout", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", views.MeView.as_view(), name="auth-me"),
    path(
        "invite/validate/<str:code>",
        views.InviteValidateView.as_view(),
        name="invite-validate",
    ),
]
