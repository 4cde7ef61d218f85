"""REST routes for retire and wipe requests, verification evidence, cleanup rules and offboarding."""

urlpatterns: list = []
