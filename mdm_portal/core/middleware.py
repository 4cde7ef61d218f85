"""Request guards that run before any view."""

from django.http import HttpResponse, JsonResponse

from .views.errors import AGENT_PREFIXES, API_PREFIXES

NUL_MESSAGE = "The address contains a NUL character (%00), which no page or filter accepts. Remove it and try again."


class RefuseNulCharactersMiddleware:
    """A NUL character in the path or the query string is a 400 before any view runs.

    PostgreSQL cannot store or compare text holding one, so a search, filter or lookup with it would
    fail deep inside a view (a 500). Bodies are validated by the forms and serializers (Django's and
    DRF's character fields refuse NUL already).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in request.GET.urlencode(safe="\x00"):
            return self.refusal(request)
        return self.get_response(request)

    @staticmethod
    def refusal(request):
        if request.path.startswith(AGENT_PREFIXES):
            return JsonResponse({"error": {"code": "invalid", "message": NUL_MESSAGE, "fields": {}}}, status=400)
        if request.path.startswith(API_PREFIXES):
            return JsonResponse({"detail": NUL_MESSAGE}, status=400)
        return HttpResponse(NUL_MESSAGE, status=400, content_type="text/plain; charset=utf-8")
