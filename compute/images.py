"""Who sees which image, as Glance v2 decides it (glance/db/sqlalchemy/api.py, glance/api/authorization.py).

One rule set for the Glance API (api/views/glance_images.py) and the Nova image proxy
(api/views/images.py), so both show the same records to the same caller:

- An image is *visible* (``GET /v2/images/{id}``) to an admin, to anyone if it is ``public``
  or ``community``, to its owner, and, if ``shared``, to each member whatever the member's
  status. Deleted images are never visible.
- A *listing* with no ``visibility`` filter holds the public images, the caller's own, and
  the shared images the caller is a member of with ``member_status`` (default ``accepted``);
  community images appear only when asked for (``visibility=community`` or ``all``). Admins
  list every image. Hidden images (``os_hidden``) are left out unless asked for.
- Only the owner or an admin may change or delete an image.
"""
from __future__ import annotations

from compute.context import RequestContext
from compute.models import Image

VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("accepted", "pending", "rejected")
GONE_STATUSES = ("deleted",)


def is_visible(ctx: RequestContext, image: Image | None) -> bool:
    if image is None or image.status in GONE_STATUSES:
        return False
    if ctx.is_admin or image.visibility in ("public", "community"):
        return True
    if image.owner is not None and image.owner == ctx.project_id:
        return True
    return image.visibility == "shared" and ctx.project_id in image.members


def is_owner(ctx: RequestContext, image: Image) -> bool:
    return ctx.is_admin or (image.owner is not None and image.owner == ctx.project_id)


def _member_matches(ctx: RequestContext, image: Image, member_status: str) -> bool:
    status = image.members.get(ctx.project_id or "")
    return status is not None and member_status in ("all", status)


def is_listed(ctx: RequestContext, image: Image, visibility: str | None = None,
              member_status: str = "accepted") -> bool:
    """Whether ``image`` is in the caller's listing for this ``visibility`` filter (None: the default)."""
    if image.status in GONE_STATUSES:
        return False
    if visibility not in (None, "all") and image.visibility != visibility:
        return False
    if ctx.is_admin:
        return True
    own = image.owner is not None and image.owner == ctx.project_id
    if image.visibility == "public":
        return True
    if image.visibility == "community":
        return own or visibility in ("community", "all")
    if own:
        return True
    return image.visibility == "shared" and _member_matches(ctx, image, member_status)
