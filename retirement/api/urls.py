"""REST routes for retire and wipe requests and their verification evidence."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .offboarding import OffboardingViewSet
from .views import DeviceRetirementViewSet, RetirementRequestViewSet, RetirementSummaryView

router = SimpleRouter()
# Only detail actions: /devices/{id}/retire/ and /devices/{id}/wipe/ next to the devices app's own routes.
router.register("devices", DeviceRetirementViewSet, basename="device-retirement")
router.register("retirement-requests", RetirementRequestViewSet, basename="retirement-request")
router.register("offboardings", OffboardingViewSet, basename="offboarding")

urlpatterns = [
    path("retirement/summary/", RetirementSummaryView.as_view(), name="retirement-summary"),
    *router.urls,
]
