from django.urls import include, path

from . import views

app_name = "agent"

urlpatterns = [
    path("enroll", views.EnrollView.as_view(), name="enroll"),
    path("checkin", views.CheckinView.as_view(), name="checkin"),
    path("commands/results", views.CommandResultsView.as_view(), name="command-results"),
    path("secret/rotate", views.SecretRotateView.as_view(), name="secret-rotate"),
    path("apps/", include("apps.protocol")),
]
