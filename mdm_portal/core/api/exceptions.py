from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from .errors import NOT_FOUND


def exception_handler(exc, context):
    """DRF's handler, plus two things that keep every error body in the documented shape.

    A model or service ``ValidationError`` is a 400 with its sentences: field errors by field, and a
    general one as ``{"detail": "<sentences>"}`` (a string, as for every other error, not a list).
    An object that does not exist or is not yours to see is ``{"detail": "Not found."}``, the same as
    an unknown address, without the model's name.
    """
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": " ".join(exc.messages)}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND)
    return drf_exception_handler(exc, context)
