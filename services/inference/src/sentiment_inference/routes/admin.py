"""POST /admin/reload (bearer token) and POST /webhooks/mlflow (HMAC): both only make the poller poll now.

Neither can load an arbitrary model: the poller still loads what the registry alias says, through the same
download, verification and validation steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sentiment_inference.app_state import get_service
from sentiment_inference.errors import ApiError, ErrorBody
from sentiment_inference.schemas import ReloadResponse, WebhookResponse
from sentiment_inference.settings import Settings
from sentiment_inference.validation_messages import unparsable_body_message

# MLflow registry webhooks (mlflow.webhooks.delivery): signature "v1,<base64 HMAC-SHA256>" of
# "<delivery id>.<timestamp>.<raw body>", keyed with the webhook's secret.
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
# Older signed deliveries are refused, so a captured request cannot be replayed later.
WEBHOOK_MAX_AGE_SECONDS = 300
# Delivery ids seen inside that window are kept (and refused again): a captured request cannot be replayed
# sooner either. Bounded: past it the oldest id is forgotten (only a holder of the secret can add ids).
WEBHOOK_SEEN_DELIVERIES_MAX = 10_000

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="ADMIN_TOKEN of this deployment")


def sign_webhook(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The signature MLflow sends for this delivery (also what tests use to sign their requests)."""
    content = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class SeenDeliveries:
    """Delivery ids of accepted webhooks until their timestamp leaves the +-WEBHOOK_MAX_AGE_SECONDS window."""

    def __init__(self, max_entries: int = WEBHOOK_SEEN_DELIVERIES_MAX) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()  # id -> when its timestamp becomes too old
        self._max = max_entries

    def first_time(self, delivery: str, timestamp: int, now: float) -> bool:
        """Record `delivery`; False when it was already seen (a replay)."""
        while self._expiry and next(iter(self._expiry.values())) < now:
            self._expiry.popitem(last=False)
        if delivery in self._expiry:
            return False
        # Insertion order is expiry order up to the clock skew the window allows: good enough for pruning.
        self._expiry[delivery] = timestamp + WEBHOOK_MAX_AGE_SECONDS
        if len(self._expiry) > self._max:
            self._expiry.popitem(last=False)
        return True


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["admin"])
    seen = SeenDeliveries()

    @router.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={
            401: {"model": ErrorBody, "description": "Missing or wrong bearer token."},
            403: {"model": ErrorBody, "description": "Disabled: no ADMIN_TOKEN is configured."},
        },
        summary="Poll the registry now (and retry a rejected champion version)",
    )
    async def reload(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]
    ) -> ReloadResponse:
        if settings.admin_token is None:
            raise ApiError(
                403, "admin_disabled", "the admin endpoint is disabled: no ADMIN_TOKEN is configured on this service"
            )
        challenge = {"WWW-Authenticate": 'Bearer realm="sentiment-inference"'}
        if credentials is None:
            # Never log what was sent: a mistyped token is most of the real one.
            logger.warning("admin login failed: no bearer token (client %s)", _client(request))
            raise ApiError(401, "unauthorized", "missing 'Authorization: Bearer <ADMIN_TOKEN>' header", challenge)
        expected = settings.admin_token.get_secret_value().encode()
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            logger.warning("admin login failed: wrong bearer token (client %s)", _client(request))
            raise ApiError(401, "unauthorized", "wrong admin token", challenge)
        service = get_service(request)
        result = await service.poller.poll_now(force=True)
        current = service.store.current
        return ReloadResponse(
            result=result.outcome,
            version=result.version,
            message=result.message,
            serving_version=current.version if current else None,
        )

    @router.post(
        "/webhooks/mlflow",
        status_code=202,
        response_model=WebhookResponse,
        responses={
            400: {"model": ErrorBody, "description": "A signed body that is not JSON."},
            401: {"model": ErrorBody, "description": "Missing, stale or wrong signature."},
            403: {"model": ErrorBody, "description": "Disabled: no WEBHOOK_SECRET is configured."},
            409: {"model": ErrorBody, "description": "This delivery id was already received (a replay)."},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
            }
        },
        summary="MLflow registry webhook (HMAC-signed): triggers an immediate poll, nothing else",
    )
    async def mlflow_webhook(request: Request) -> JSONResponse:
        if settings.webhook_secret is None:
            raise ApiError(403, "webhook_disabled", "webhooks are disabled: no WEBHOOK_SECRET is configured")
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        delivery = request.headers.get(DELIVERY_HEADER)
        if not signature or not timestamp or not delivery:
            raise ApiError(
                401,
                "unauthorized",
                f"missing webhook signature headers: {SIGNATURE_HEADER}, {TIMESTAMP_HEADER}, {DELIVERY_HEADER}",
            )
        now = time.time()
        try:
            stamp = int(timestamp)
        except ValueError:
            raise ApiError(401, "unauthorized", f"{TIMESTAMP_HEADER} must be a Unix timestamp") from None
        age = abs(now - stamp)
        if age > WEBHOOK_MAX_AGE_SECONDS:
            raise ApiError(
                401, "unauthorized", f"webhook timestamp is {age:.0f}s old; at most {WEBHOOK_MAX_AGE_SECONDS}s"
            )
        body = await request.body()
        expected = sign_webhook(settings.webhook_secret.get_secret_value(), delivery, timestamp, body)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            logger.warning("webhook refused: signature does not match (client %s)", _client(request))
            raise ApiError(401, "unauthorized", "webhook signature does not match")
        if not seen.first_time(delivery, stamp, now):
            logger.warning("webhook refused: delivery %s was already received (replay)", delivery[:64])
            raise ApiError(409, "duplicate_delivery", f"webhook delivery {delivery[:64]} was already received")
        try:
            payload: Any = json.loads(body)
        except (ValueError, RecursionError) as error:  # RecursionError: nesting deeper than the parser's stack
            message = unparsable_body_message(error) if not isinstance(error, json.JSONDecodeError) else None
            message = message or f"the body is not valid JSON ({error})"
            logger.warning("webhook refused: %s", message)
            raise ApiError(400, "invalid_json", message) from None
        if not _concerns(payload, settings.model_name):
            return JSONResponse({"accepted": False, "message": "event is about another model; ignored"}, 202)
        get_service(request).poller.nudge()
        return JSONResponse({"accepted": True, "message": "poll scheduled"}, 202)

    return router


def _concerns(payload: Any, model_name: str) -> bool:
    """True unless the payload names another registered model (an unexpected shape still nudges: harmless)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    name = data.get("name") if isinstance(data, dict) else None
    return name is None or name == model_name
