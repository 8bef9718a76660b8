"""Flavors, images, the backup rotation index and the rotation lock."""
from __future__ import annotations

import datetime as dt

from compute.models import Flavor, Image
from compute.store import Store
from tests.contract.conftest import SMALL, Backend


def test_put_flavor__record_and_index_in_one_multi(backend: Backend) -> None:
    store, client = backend.counting()
    store.put_flavor(SMALL)
    store.put_flavor(Flavor(id="big", name="m1.big", vcpus=8, ram=8192, disk=80))
    assert (client.direct, client.multis) == ([], 2)
    assert store.get_flavor("small") == SMALL
    assert sorted(f.id for f in store.list_flavors()) == ["big", "small"]


def test_image__put_update_delete(store: Store) -> None:
    image = Image(name="cirros")
    store.put_image(image)
    assert store.list_images() == [image]

    def saving(i: Image) -> None:
        i.status = "saving"

    assert store.update_image(image.id, saving).status == "saving"
    assert store.get_image(image.id).status == "saving"
    assert store.delete_image(image.id) is True
    assert store.delete_image(image.id) is False
    assert store.get_image(image.id) is None
    assert store.list_images() == []
    assert store.update_image(image.id, saving) is None


def backup_image(instance_id: str, name: str, minutes_ago: int) -> Image:
    created = (dt.datetime(2026, 1, 1, 12) - dt.timedelta(minutes=minutes_ago)).isoformat(timespec="microseconds")
    return Image(name=name, created_at=created,
                 properties={"image_type": "backup", "instance_uuid": instance_id, "backup_type": "daily"})


def test_backups__rotation_lists_past_the_newest_and_delete_leaves_the_index(store: Store) -> None:
    images = [backup_image("vm-1", name, minutes_ago) for name, minutes_ago in (("old", 30), ("mid", 20), ("new", 10))]
    for image in images:
        store.put_image(image)
        store.add_backup("vm-1", "daily", image)
    old, mid, new = (i.id for i in images)
    assert store.backups_past_rotation("vm-1", "daily", 1) == [mid, old]
    assert store.backups_past_rotation("vm-1", "daily", 3) == []
    assert store.backups_past_rotation("vm-1", "weekly", 0) == []
    store.delete_image(mid)
    assert store.backups_past_rotation("vm-1", "daily", 0) == [new, old]
    assert [i.name for i in store.list_images()] == ["old", "new"]


def test_rotation_lock__reentrant_for_its_holder_refused_to_others(store: Store) -> None:
    assert store.acquire_rotation_lock("vm-1", "daily", "req-a", ttl=30)
    assert store.acquire_rotation_lock("vm-1", "daily", "req-a", ttl=30)
    assert not store.acquire_rotation_lock("vm-1", "daily", "req-b", ttl=30)
    assert store.acquire_rotation_lock("vm-1", "weekly", "req-b", ttl=30)
    assert store.rotation_lock_holder("vm-1", "daily") == "req-a"
    assert store.lease_holder("req-a") is None  # a lock, not the action's lease
    store.release_rotation_lock("vm-1", "daily", "req-b")
    assert store.rotation_lock_holder("vm-1", "daily") == "req-a"
    store.release_rotation_lock("vm-1", "daily", "req-a")
    assert store.rotation_lock_holder("vm-1", "daily") is None
    assert store.acquire_rotation_lock("vm-1", "daily", "req-b", ttl=30)


def test_rotation_lock__expires(store: Store) -> None:
    assert store.acquire_rotation_lock("vm-1", "daily", "req-a", ttl=0.05)
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    while store.rotation_lock_holder("vm-1", "daily") is not None and dt.datetime.now() < deadline:
        pass
    assert store.acquire_rotation_lock("vm-1", "daily", "req-b", ttl=30)
