"""Base for Company Portal pages: signed-in employees, their own objects only (``authz.owned``)."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView


class PortalView(LoginRequiredMixin, TemplateView):
    """Every portal page requires a signed-in, active person. Subclasses read through owner selectors."""

    login_url = "portal:login"


class PortalLoginView(auth_views.LoginView):
    template_name = "portal/login.html"
    redirect_authenticated_user = True


class PortalLogoutView(auth_views.LogoutView):
    pass
