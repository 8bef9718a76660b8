"""The image listing sets (``images:public``, ``project:{p}:images``, ``project:{p}:shared_images``) against
the records: a project's page read from their union is the page read from every image, whatever writes the
images went through, and concurrent updates of one image leave the sets as its record says."""
from __future__ import annotations

import threading

import pytest

from compute import images as rules
from compute.context import RequestContext
from compute.models import Image
from compute.store import Store
from compute.store.fleet_seed import FleetFile
from tests.contract.conftest import Backend

PROJECTS = ["p0", "p1", "p2"]


def caller(project: str) -> RequestContext:
    return RequestContext(user_id="u", project_id=project, roles=["member"])


def listing_sets(backend: Backend) -> dict[str, set[str]]:
    """Each listing set's members, by key after the prefix (empty sets absent)."""
    found = {}
    for key in backend.client.scan_iter(match=f"{backend.prefix}*images*"):
        name = key[len(backend.prefix):]
        if name in ("images", "images:listing_built"):
            continue
        found[name] = set(backend.client.zrange(key, 0, -1))
    return {name: members for name, members in found.items() if members}


def expected_sets(images: list[Image]) -> dict[str, set[str]]:
    wanted: dict[str, set[str]] = {}
    for image in images:
        names = {f"project:{m}:shared_images" for m in image.members}
        names |= {"images:public"} if image.visibility == "public" else set()
        names |= {f"project:{image.owner}:images"} if image.owner else set()
        for name in names:
            wanted.setdefault(name, set()).add(image.id)
    return wanted


def mixed_images(store: Store, count: int = 40) -> list[Image]:
    visibilities = ["public", "private", "shared", "community"]
    made = []
    for n in range(count):
        image = Image(name=f"i{n}", owner=PROJECTS[n % 3], visibility=visibilities[n % 4],
                      members={PROJECTS[(n + 1) % 3]: "accepted"} if n % 4 == 2 else {},
                      created_at=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}.000000")
        store.put_image(image)
        made.append(image)
    return made


def test_a_projects_page_from_its_sets_is_the_page_from_every_image(store: Store) -> None:
    made = mixed_images(store)

    def private(image: Image) -> None:
        image.visibility = "private"

    def to_p2(image: Image) -> None:
        image.owner, image.visibility = "p2", "public"

    store.update_image(made[0].id, private)
    store.update_image(made[5].id, to_p2)
    store.delete_image(made[8].id)
    for project in PROJECTS:
        ctx = caller(project)

        def listed(image: Image, ctx: RequestContext = ctx) -> bool:
            return rules.is_listed(ctx, image)

        every = store.page_images(100, keep=listed)
        assert [i.id for i in store.page_images(100, keep=listed, listable_by=project)] == [i.id for i in every]
        assert [i.id for i in store.page_images(4, after=every[3], keep=listed, listable_by=project)] == \
            [i.id for i in every[4:8]]


def test_the_sets_follow_every_write_of_the_records(backend: Backend, store: Store) -> None:
    made = mixed_images(store, 12)

    def moved(image: Image) -> None:
        image.owner, image.visibility, image.members = "p9", "shared", {"p7": "pending"}

    store.update_image(made[0].id, moved)
    store.delete_image(made[1].id)
    assert listing_sets(backend) == expected_sets(store.list_images())


def test_rebuild__fills_the_sets_of_a_store_written_before_them(backend: Backend, store: Store) -> None:
    mixed_images(store, 9)
    for key in list(backend.client.scan_iter(match=f"{backend.prefix}*images*")):
        if not key.endswith(":images") or key == f"{backend.prefix}images":
            continue
        backend.client.delete(key)
    backend.client.delete(f"{backend.prefix}images:public")
    assert store.rebuild_image_listing() == 9
    assert listing_sets(backend) == expected_sets(store.list_images())
    assert store.rebuild_image_listing() == 0  # once


def test_concurrent_updates_of_one_image__the_sets_are_its_records(real_backend: Backend) -> None:
    """Each update reads the record under WATCH and moves its entries in the same MULTI: two writers
    flipping the owner and the visibility leave exactly the entries the final record needs."""
    store = real_backend.store()
    image = Image(name="raced", owner="p0", visibility="private")
    store.put_image(image)
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=20)

    def flip(field: str, values: list[str]) -> None:
        try:
            own = Store(real_backend.client, prefix=real_backend.prefix)
            start.wait()
            for i in range(60):
                value = values[i % len(values)]
                own.update_image(image.id, lambda found, value=value: setattr(found, field, value))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=("owner", ["p1", "p2", "p0"])),
               threading.Thread(target=flip, args=("visibility", ["public", "private", "shared"]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert listing_sets(real_backend) == expected_sets(store.list_images())


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_fleet_file_images_are_in_the_sets(backend: Backend, store: Store, visibility: str) -> None:
    image = Image(name="seeded", owner="p0", visibility=visibility)
    store.apply_fleet(FleetFile(hosts=[], flavors=[], images=[image], aggregates=[], durations={}, digest="d"))
    assert listing_sets(backend) == expected_sets([image])


def test_an_owner_filter_pages_the_owners_sets_only(store: Store) -> None:
    made = mixed_images(store)
    admin = RequestContext(user_id="admin", project_id="admin", roles=["admin"])
    for owners in ({"p1"}, {"p0", "p2"}, {"nobody"}):
        def wanted(image: Image, owners: set[str] = owners) -> bool:
            return rules.is_listed(admin, image) and image.owner in owners

        every = [i.id for i in store.page_images(100, keep=wanted)]
        assert [i.id for i in store.page_images(100, keep=wanted, owners=owners)] == every
        assert len(every) == sum(1 for i in made if i.owner in owners)
