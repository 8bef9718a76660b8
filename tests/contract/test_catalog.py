"""Flavors, images, the backup rotation index and the rotation lock."""
from __future__ import annotations

import datetime as dt

import pytest

from compute.models import Flavor, Image
from compute.store import MarkerNotFound, Store
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


def images_at(store: Store, count: int, created: str = "2026-01-01T00:00:00") -> list[Image]:
    """``count`` images a second apart from ``created``, each owned by ``p{n % 3}``: newest first."""
    start = dt.datetime.fromisoformat(created)
    made = [Image(name=f"i{n}", owner=f"p{n % 3}",
                  created_at=(start + dt.timedelta(seconds=n)).isoformat(timespec="microseconds"))
            for n in range(count)]
    for image in made:
        store.put_image(image)
    return made[::-1]


def test_page_images__newest_first_after_a_marker_filtered_across_chunks(store: Store) -> None:
    newest_first = images_at(store, 70)
    assert [i.id for i in store.page_images(5)] == [i.id for i in newest_first[:5]]
    assert [i.id for i in store.page_images(5, after=newest_first[4])] == [i.id for i in newest_first[5:10]]
    owned = [i.id for i in newest_first if i.owner == "p1"]
    assert [i.id for i in store.page_images(20, keep=lambda i: i.owner == "p1")] == owned[:20]  # past 2 chunks
    assert store.page_images(5, after=newest_first[-1]) == []
    assert [i.id for i in store.page_images(100)] == [i.id for i in newest_first]


def test_page_images__equal_times_in_id_order_descending_as_glance_sorts(store: Store) -> None:
    same = [Image(name=f"t{n}", created_at="2026-01-01T00:00:00.000000") for n in range(20)]
    for image in same:
        store.put_image(image)
    by_id = sorted((i.id for i in same), reverse=True)
    first = store.page_images(7)
    assert [i.id for i in first] == by_id[:7]
    assert [i.id for i in store.page_images(20, after=first[-1])] == by_id[7:]  # ties after the marker kept


def test_page_images__a_marker_deleted_meanwhile_is_not_found(store: Store) -> None:
    newest_first = images_at(store, 3)
    store.delete_image(newest_first[1].id)
    with pytest.raises(MarkerNotFound):
        store.page_images(5, after=newest_first[1])


def test_page_images__an_image_written_between_two_chunks_repeats_none(store: Store) -> None:
    """A newer image moves every position down by one while the page is read: the image at the chunks'
    edge is not read twice, and the page is the images older than the new one, none missing."""
    newest_first = images_at(store, 40)
    calls = []

    def keep(image: Image) -> bool:
        calls.append(image.id)
        if len(calls) == 16:  # the last image of the first chunk
            store.put_image(Image(name="late", created_at="2027-01-01T00:00:00.000000"))
        return True

    page = store.page_images(30, keep=keep)
    assert [i.id for i in page] == [i.id for i in newest_first[:30]]
