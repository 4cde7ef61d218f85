from mdm_portal.core.views.portal import PortalView

from .. import selectors


class PortalDeviceListView(PortalView):
    """My devices: the employee's own devices with their state and last check-in."""

    template_name = "portal/devices/device_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["devices"] = selectors.portal_device_list(user=self.request.user)
        return context


class PortalDeviceDetailView(PortalView):
    template_name = "portal/devices/device_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["device"] = selectors.portal_device_get(user=self.request.user, uuid=kwargs["uuid"])
        return context
