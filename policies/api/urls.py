"""REST routes for configuration profiles, compliance policies, the compliance reports and one device's compliance."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import CompliancePolicyViewSet, ComplianceReportViewSet, DeviceComplianceView, ProfileViewSet

router = SimpleRouter()
router.register("profiles", ProfileViewSet, basename="profile")
router.register("compliance-policies", CompliancePolicyViewSet, basename="compliance-policy")
router.register("compliance", ComplianceReportViewSet, basename="compliance")

urlpatterns = [
    *router.urls,
    path("devices/<uuid:id>/compliance/", DeviceComplianceView.as_view(), name="device-compliance"),
]
