"""`@requires`: the roles a handler method needs, checked before it runs and kept for the OpenAPI document."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import tornado.web

from .principal import (
    HTTP_METHODS,
    ROLES_ATTR,
    DenialReason,
    Principal,
    Role,
    authorization_failed,
)

LOG = logging.getLogger(__name__)


class HasPrincipal(Protocol):
    """What `@requires` needs from a handler: the (cached) caller of this request."""

    async def current_principal(self) -> Principal: ...


_H = TypeVar("_H", bound=HasPrincipal)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def requires(
    *roles: Role,
) -> Callable[
    [Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]]],
    Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]],
]:
    """Declare the roles that may call a handler method; a caller needs one of them.

    The caller is authenticated first (403 `authentication failed`), then must hold one of `roles` and, if its
    token is scoped to a scan, the route's `scan_id` path argument must be that scan (403 `authorization
    failed`; a scoped caller cannot use routes without `scan_id`). The roles are kept on the method as
    `__skydriver_roles__` for the OpenAPI document (`declared_roles`, `handler_roles`). An unknown role or an
    empty list raises TypeError when the class is defined.
    """
    if not roles:
        raise TypeError("@requires needs at least one role, e.g. @requires(Role.USER)")
    checked: list[Role] = []
    for r in roles:
        try:
            role = Role(r)
        except ValueError:
            known = ", ".join(repr(x.value) for x in Role)
            raise TypeError(f"@requires: unknown role {r!r} (known: {known})") from None
        if role not in checked:
            checked.append(role)
    declared = tuple(checked)

    def decorate(
        method: Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]],
    ) -> Callable[Concatenate[_H, _P], Coroutine[Any, Any, _R]]:
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"@requires decorates async handler methods; {method!r} is not one")

        @functools.wraps(method)
        async def wrapper(self: _H, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            principal = await self.current_principal()
            if principal.roles.isdisjoint(declared):
                LOG.info(
                    "authorization failed: %r has roles %s, %s needs one of %s",
                    principal.subject,
                    sorted(principal.roles),
                    method.__qualname__,
                    list(declared),
                )
                raise authorization_failed(DenialReason.WRONG_ROLE)
            if not principal.may_access_scan(kwargs.get("scan_id")):
                LOG.info(
                    "authorization failed: %r is limited to scan %s, %s was called for %r",
                    principal.subject,
                    principal.scan_id,
                    method.__qualname__,
                    kwargs.get("scan_id"),
                )
                scoped_route = kwargs.get("scan_id") is not None
                raise authorization_failed(
                    DenialReason.WRONG_SCAN if scoped_route else DenialReason.SCOPED_TOKEN
                )
            return await method(self, *args, **kwargs)

        setattr(wrapper, ROLES_ATTR, declared)
        return wrapper

    return decorate


def public(method: Callable[_P, Coroutine[Any, Any, _R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Declare a handler method open to anyone, without a token (health, the OpenAPI document): an
    explicit declaration, so that a forgotten `@requires` still shows as undeclared."""
    if not inspect.iscoroutinefunction(method):
        raise TypeError(f"@public decorates async handler methods; {method!r} is not one")
    setattr(method, ROLES_ATTR, ())
    return method


def declared_roles(method: object) -> tuple[Role, ...] | None:
    """The roles `@requires` declared on `method`, or None if it has none."""
    roles = getattr(method, ROLES_ATTR, None)
    return roles if isinstance(roles, tuple) else None


def handler_roles(handler_class: type) -> dict[str, tuple[Role, ...]]:
    """HTTP method (upper case) -> declared roles, for each method of `handler_class` that declares some."""
    found: dict[str, tuple[Role, ...]] = {}
    for name in HTTP_METHODS:
        roles = declared_roles(getattr(handler_class, name, None))
        if roles is not None:
            found[name.upper()] = roles
    return found


def undeclared_methods(handler_class: type) -> list[str]:
    """HTTP methods `handler_class` implements without `@requires`, i.e. open to anyone (for route tests)."""
    return [
        name.upper()
        for name in HTTP_METHODS
        if getattr(handler_class, name, None) is not getattr(tornado.web.RequestHandler, name, None)
        and declared_roles(getattr(handler_class, name)) is None
    ]
