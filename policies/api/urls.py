"""REST routes for configuration profiles, compliance policies, assignments and their evaluation."""

urlpatterns: list = []
