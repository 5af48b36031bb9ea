from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("register", views.RegisterView.as_view(), name="auth_register"),
    path("login", views.LoginView.as_view(), name="auth_login"),
    path("logout", views.LogoutView.as_view(), name="auth_logout"),
    path("logout-all", views.LogoutAllView.as_view(), name="auth_logout_all"),
    path("password", views.PasswordChangeView.as_view(), name="auth_password"),
    path("me", views.MeView.as_view(), name="auth_me"),
]
