from rest_framework.routers import SimpleRouter

from .identifiers import CorporateIdentifierViewSet, IdentifierImportViewSet
from .views import DeviceCommandViewSet, DeviceViewSet

router = SimpleRouter()
router.register("devices", DeviceViewSet, basename="device")
router.register("commands", DeviceCommandViewSet, basename="command")
# Imports first: their prefix is inside the identifiers' one.
router.register("corporate-identifiers/imports", IdentifierImportViewSet, basename="corporate-identifier-import")
router.register("corporate-identifiers", CorporateIdentifierViewSet, basename="corporate-identifier")

urlpatterns = router.urls
