"""Flavors, images, and the backups of a server with the lock that serialises their rotation."""
from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from compute.models import Flavor, Image, utcnow
from compute.store.base import MarkerNotFound, StoreBase, iso_to_epoch

# KEYS: a lock. ARGV: the owner, a TTL in ms. Takes it when free, renews it for its holder: 1, else 0.
TAKE_REENTRANT_LOCK = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: the image record, then listing sets: the first ARGV[5] of them gain the image, the rest lose it.
# ARGV: the value the record must still hold, its new value, the image id, its score (created_at).
SWAP_LISTED_IMAGE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
local adds = tonumber(ARGV[5])
for i = 2, #KEYS do
  if i - 1 <= adds then redis.call('ZADD', KEYS[i], ARGV[4], ARGV[3]) else redis.call('ZREM', KEYS[i], ARGV[3]) end
end
return 1
"""


class CatalogRecords(StoreBase):
    # ---- flavors --------------------------------------------------------------------------
    def put_flavor(self, flavor: Flavor) -> None:
        pipe = self._multi()
        pipe.set(self._keys.flavor(flavor.id), flavor.model_dump_json())
        pipe.sadd(self._keys.flavor_index(), flavor.id)
        pipe.execute()

    def get_flavor(self, flavor_id: str) -> Flavor | None:
        return self._load(Flavor, self._keys.flavor(flavor_id))

    def list_flavors(self) -> list[Flavor]:
        ids = self._client.smembers(self._keys.flavor_index())
        return self._load_many(Flavor, (self._keys.flavor(i) for i in ids))

    # ---- images ----------------------------------------------------------------------------
    def put_image(self, image: Image, pipe: Any = None) -> None:
        """Write an image record; with ``pipe`` it joins the caller's MULTI."""
        own = pipe is None
        pipe = self._multi() if own else pipe
        pipe.set(self._keys.image(image.id), image.model_dump_json())
        pipe.zadd(self._keys.image_index(), {image.id: iso_to_epoch(image.created_at)})
        self._queue_image_listing(pipe, image)
        self._queue_identity(pipe, image.properties.get("user_id"), image.owner)
        if own:
            pipe.execute()

    def _image_listing_keys(self, image: Image) -> set[str]:
        """The listing sets that name ``image`` as it is (keys.py: ``images:public`` and the next two)."""
        found = {self._keys.shared_images(member) for member in image.members}
        if image.visibility == "public":
            found.add(self._keys.public_images())
        if image.owner:
            found.add(self._keys.project_images(image.owner))
        return found

    def _queue_image_listing(self, pipe: Any, image: Image, before: Image | None = None) -> None:
        """Queue ``image``'s listing entries in the caller's MULTI, and drop those only ``before`` needed."""
        now = self._image_listing_keys(image)
        for key in now:
            pipe.zadd(key, {image.id: iso_to_epoch(image.created_at)})
        for key in (set() if before is None else self._image_listing_keys(before) - now):
            pipe.zrem(key, image.id)

    def _swap_listed_image(self, key: str, expected: str, image: Image, before: Image) -> bool:
        """The record's compare-and-set with its listing entries' moves, in one script (one round trip)."""
        now = sorted(self._image_listing_keys(image))
        gone = sorted(self._image_listing_keys(before) - set(now))
        return bool(self._script(SWAP_LISTED_IMAGE)(
            keys=[key, *now, *gone],
            args=[expected, image.model_dump_json(), image.id, iso_to_epoch(image.created_at), len(now)]))

    def update_image(self, image_id: str, mutate: Callable[[Image], None]) -> Image | None:
        """Compare-and-set on one image (a read, then a swap against what was read: two round trips);
        None when it no longer exists."""
        key = self._keys.image(image_id)
        while True:
            raw = self._client.get(key)
            if raw is None:
                return None
            image = Image.model_validate_json(raw)
            before = image.model_copy(deep=True)
            mutate(image)
            image.updated_at = utcnow()
            if self._swap_listed_image(key, raw, image, before):
                return image

    def get_image(self, image_id: str) -> Image | None:
        return self._load(Image, self._keys.image(image_id))

    def page_images(self, limit: int, *, after: Image | None = None, keep: Callable[[Image], bool] | None = None,
                    listable_by: str | None = None, owners: set[str] | None = None) -> list[Image]:
        """Up to ``limit`` images newest first (created_at, then id, descending: ``images`` read backwards),
        from the one after ``after`` (else from the newest), those ``keep`` refuses skipped. ``owners``: only
        those projects' images; else ``listable_by`` (a project): only the public images, the project's own
        and those shared with it; each from their listing sets.

        Reads the index by position in chunks (the page's size, then twice as much) with one MGET each: as far
        as the page takes to fill, not every image. An ``after`` not in the index read raises MarkerNotFound."""
        if owners:
            read = self._union_window([self._keys.project_images(o) for o in sorted(owners)])
        elif listable_by is not None:
            read = self._union_window([self._keys.public_images(), self._keys.project_images(listable_by),
                                       self._keys.shared_images(listable_by)])
        else:
            read = self._image_window
        start = 0
        if after is not None:
            rank = read(0, -1, after.id)[1]
            if rank is None:
                raise MarkerNotFound(after.id)
            start = rank + 1
        found: list[Image] = []
        seen = {after.id} if after is not None else set()  # a write between two reads moves the rest down one
        chunk = max(limit, 16)
        while len(found) < limit:
            ids = read(start, start + chunk - 1, None)[0]
            fresh = [i for i in ids if i not in seen]
            seen.update(fresh)
            for image in self._load_many(Image, (self._keys.image(i) for i in fresh)):
                if keep is None or keep(image):
                    found.append(image)
                    if len(found) == limit:
                        break
            if len(ids) < chunk:
                break
            start += chunk
            chunk = min(chunk * 2, 2000)
        return found

    def _image_window(self, start: int, stop: int, rank_of: str | None) -> tuple[list[str], int | None]:
        """(ids at positions ``start``..``stop`` of ``images`` read backwards, or the position of ``rank_of``)."""
        index = self._keys.image_index()
        if rank_of is not None:
            return [], self._client.zrevrank(index, rank_of)
        return list(self._client.zrevrange(index, start, stop)), None

    def _union_window(self, sources: list[str]) -> Callable[[int, int, str | None], tuple[list[str], int | None]]:
        """The same over the union of listing sets, made, read and deleted in one MULTI."""
        def window(start: int, stop: int, rank_of: str | None) -> tuple[list[str], int | None]:
            scratch = self._keys.image_listing_scratch(uuid.uuid4().hex)
            pipe = self._multi()
            pipe.zunionstore(scratch, sources, aggregate="MAX")
            if rank_of is None:
                pipe.zrevrange(scratch, start, stop)
            else:
                pipe.zrevrank(scratch, rank_of)
            pipe.delete(scratch)
            found = pipe.execute()[1]
            return ([], found) if rank_of is not None else (list(found), None)

        return window

    def rebuild_image_listing(self) -> int:
        """Fill the listing sets from every image for a store written before them: O(images) once, then O(1)
        to check (``images:listing_built``; a store with no image yet is left unmarked, written nothing).
        Returns how many images it indexed."""
        if self._client.exists(self._keys.image_listing_built()) or not self._client.zcard(self._keys.image_index()):
            return 0
        found = self.list_images()
        pipe = self._multi()
        for image in found:
            self._queue_image_listing(pipe, image)
        pipe.set(self._keys.image_listing_built(), "1")
        pipe.execute()
        return len(found)

    def list_images(self) -> list[Image]:
        ids = self._client.zrange(self._keys.image_index(), 0, -1)
        return self._load_many(Image, (self._keys.image(i) for i in ids))

    def delete_image(self, image_id: str) -> bool:
        image = self.get_image(image_id)
        pipe = self._multi()
        pipe.delete(self._keys.image(image_id))
        pipe.zrem(self._keys.image_index(), image_id)
        for key in set() if image is None else self._image_listing_keys(image):
            pipe.zrem(key, image_id)
        if image is not None and image.properties.get("image_type") == "backup":
            pipe.zrem(self._keys.instance_backups(image.properties.get("instance_uuid", ""),
                                                  image.properties.get("backup_type", "")), image_id)
        return bool(pipe.execute()[0])

    # ---- backups and their rotation ---------------------------------------------------------
    def add_backup(self, instance_id: str, backup_type: str, image: Image) -> None:
        """Enter an uploaded backup in its (server, backup_type) rotation set, ordered by creation."""
        self._client.zadd(self._keys.instance_backups(instance_id, backup_type),
                          {image.id: iso_to_epoch(image.created_at)})

    def backups_past_rotation(self, instance_id: str, backup_type: str, rotation: int) -> list[str]:
        """Backups of (server, backup_type) beyond the ``rotation`` newest, oldest last."""
        return list(self._client.zrevrange(self._keys.instance_backups(instance_id, backup_type), rotation, -1))

    def acquire_rotation_lock(self, instance_id: str, backup_type: str, owner: str, ttl: float) -> bool:
        """Take (or, for its holder, renew) the lock over rotating (server, backup_type)'s backups.

        Re-entrant for ``owner`` so that a rotation resumed after a crash gets its own lock back
        at once; False while another request holds it.
        """
        key = self._keys.rotation_lock(instance_id, backup_type)
        return bool(self._script(TAKE_REENTRANT_LOCK)(keys=[key], args=[owner, int(ttl * 1000)]))

    def rotation_lock_holder(self, instance_id: str, backup_type: str) -> str | None:
        return self._client.get(self._keys.rotation_lock(instance_id, backup_type))

    def release_rotation_lock(self, instance_id: str, backup_type: str, owner: str) -> None:
        """Free the rotation lock if ``owner`` holds it; another holder's lock stays."""
        self._delete_if_held(self._keys.rotation_lock(instance_id, backup_type), owner)
