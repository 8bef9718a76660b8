"""The JSON schemas the image service publishes (``GET /image/v2/schemas/image(s)``), shaped as Glance's.

Clients that build requests from the schema (python-glanceclient; Tempest's schema tests) read
``properties`` (the core attributes and their types), ``additionalProperties`` (every custom
property is a string) and ``links``. Written here for what the service holds, not copied.
"""
from __future__ import annotations

from typing import Any

from compute.images import VISIBILITIES

STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
            "pending_delete", "deactivated"]
DISK_FORMATS = [None, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"]
CONTAINER_FORMATS = [None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
DATE_TIME = {"type": "string", "readOnly": True, "description": "Date and time (ISO 8601, UTC)"}


def image_schema() -> dict[str, Any]:
    def text(description: str, read_only: bool = False, nullable: bool = True) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": ["null", "string"] if nullable else "string",
                                  "maxLength": 255, "description": description}
        if read_only:
            schema["readOnly"] = True
        return schema

    return {
        "name": "image",
        "properties": {
            "id": {"type": "string", "pattern": UUID_PATTERN, "description": "The image's identifier"},
            "name": text("A name for the image"),
            "status": {"type": "string", "readOnly": True, "enum": STATUSES,
                       "description": "Where the image is in its life"},
            "visibility": {"type": "string", "enum": list(VISIBILITIES), "description": "Who may see the image"},
            "protected": {"type": "boolean", "description": "If true, the image cannot be deleted"},
            "os_hidden": {"type": "boolean", "description": "If true, the image is left out of default listings"},
            "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32,
                         "description": "MD5 of the image data"},
            "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64,
                             "description": "The algorithm of os_hash_value"},
            "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128,
                              "description": "The secure hash of the image data"},
            "owner": text("The project that owns the image"),
            "size": {"type": ["null", "integer"], "readOnly": True, "description": "Size of the data, in bytes"},
            "virtual_size": {"type": ["null", "integer"], "readOnly": True,
                             "description": "Virtual size of the disk, in bytes"},
            "min_ram": {"type": "integer", "minimum": 0, "description": "RAM (MiB) a server of it needs"},
            "min_disk": {"type": "integer", "minimum": 0, "description": "Disk (GiB) a server of it needs"},
            "disk_format": {"type": ["null", "string"], "enum": DISK_FORMATS, "description": "Format of the disk"},
            "container_format": {"type": ["null", "string"], "enum": CONTAINER_FORMATS,
                                 "description": "Format of the container"},
            "created_at": DATE_TIME,
            "updated_at": DATE_TIME,
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255},
                     "description": "Tags on the image"},
            "self": {"type": "string", "readOnly": True, "description": "The image's URL"},
            "file": {"type": "string", "readOnly": True, "description": "The image data's URL"},
            "schema": {"type": "string", "readOnly": True, "description": "This schema's URL"},
            "direct_url": {"type": "string", "readOnly": True, "description": "Not given by this service"},
            "locations": {"type": "array", "items": {"type": "object"}, "description": "Not given by this service"},
            # base-image properties Nova reads; any other custom property is a string too
            "kernel_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                          "description": "The kernel image of an AMI-style image"},
            "ramdisk_id": {"type": ["null", "string"], "pattern": UUID_PATTERN, "is_base": False,
                           "description": "The ramdisk image of an AMI-style image"},
            "instance_uuid": {"type": "string", "is_base": False,
                              "description": "The server a snapshot or backup was made of"},
            "os_distro": {"type": "string", "is_base": False, "description": "The operating system distribution"},
            "os_version": {"type": "string", "is_base": False, "description": "The operating system version"},
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
