import hmac

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from ..models import APIToken
from ..services import hash_token, split_token


class APITokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mdm_<prefix>_<secret>``; the token is looked up by prefix, checked by hash."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() != self.keyword.lower():
            if len(header) == 2 and header[1].startswith(b"mdm_"):
                # One of our tokens under another scheme ("Token", "Basic"): say how to send it.
                raise exceptions.AuthenticationFailed("Send the token as 'Authorization: Bearer mdm_...'.")
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the token as 'Authorization: Bearer mdm_...'.")
        try:
            plaintext = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token contains characters a token never has.") from exc
        prefix = split_token(plaintext)
        token = APIToken.objects.select_related("user").filter(prefix=prefix).first() if prefix is not None else None
        # Compare hashes in constant time so a timing difference reveals nothing.
        if token is None or not hmac.compare_digest(token.key_hash, hash_token(plaintext)):
            raise exceptions.AuthenticationFailed("This API token is not valid. Create a new one in the admin.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked. Create a new one in the admin.")
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API token has expired. Create a new one in the admin.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The account this API token belongs to is deactivated.")
        # Coarse last-used stamp: at most one write a minute per token keeps busy scripts cheap.
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            APIToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class APITokenScheme(OpenApiAuthenticationExtension):
    target_class = "mdm_portal.core.api.authentication.APITokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "mdm_<prefix>_<secret>"}
