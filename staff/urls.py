from django.contrib.auth import views as auth_views
from django.urls import path

from staff import views

urlpatterns = [
    path("audit/", views.audit_log_view, name="audit"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
