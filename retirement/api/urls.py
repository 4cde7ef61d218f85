"""REST routes for retire and wipe requests and their verification evidence."""

from rest_framework.routers import SimpleRouter

from .views import DeviceRetirementViewSet, RetirementRequestViewSet

router = SimpleRouter()
# Only detail actions: /devices/{id}/retire/ and /devices/{id}/wipe/ next to the devices app's own routes.
router.register("devices", DeviceRetirementViewSet, basename="device-retirement")
router.register("retirement-requests", RetirementRequestViewSet, basename="retirement-request")

urlpatterns = router.urls
