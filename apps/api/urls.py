"""REST routes for the app catalog, installs, app protection policies and managed app instances."""

from rest_framework.routers import SimpleRouter

from .views import AppViewSet, ManagedAppInstanceViewSet, ProtectionPolicyViewSet

router = SimpleRouter()
router.register("apps", AppViewSet, basename="app")
router.register("app-protection-policies", ProtectionPolicyViewSet, basename="app-protection-policy")
router.register("app-instances", ManagedAppInstanceViewSet, basename="app-instance")

urlpatterns = router.urls
