"""Company Portal pages for configuration profiles, compliance policies, assignments and their evaluation."""

urlpatterns: list = []
