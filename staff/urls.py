from django.contrib.auth import views as auth_views
from django.db import transaction
from django.urls import path

from staff import views

urlpatterns = [
    path("audit/", views.audit_log_view, name="audit"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    # atomic: the session's end and its audit row (staff/audit_hooks.py) together
    path("accounts/logout/", transaction.atomic(auth_views.LogoutView.as_view()), name="logout"),
    # any signed-in person changes their own password (the validators in settings apply)
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
