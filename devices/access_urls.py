from django.urls import path

from .views.access import AccessCheckView

app_name = "access"

urlpatterns = [path("check", AccessCheckView.as_view(), name="check")]
