"""Marketplace API: ``/marketplace/v2/local-images`` and ``/marketplace/v2/images``."""

from __future__ import annotations

from .catalog import IMAGE_LABELS, LOCAL_IMAGES, marketplace_image, stable_id
from .errors import ApiError
from .routing import Request, Response, Router, counted_list
from .store import Store


def list_local_images(store: Store, req: Request) -> Response:
    label = req.q("image_label")
    image_id = req.q("image_id")
    zone = req.q("zone")
    image_type = req.q("type")
    arch = req.q("arch")
    images = [
        image.to_api()
        for image in LOCAL_IMAGES.values()
        if (not label or image.label == label)
        and (not image_id or stable_id("image", image.label) == image_id)
        and (not zone or image.zone == zone)
        and (not image_type or image.type == image_type)
        and (not arch or image.arch == arch)
    ]
    return counted_list(req, "local_images", images)


def get_local_image(store: Store, req: Request, local_image_id: str) -> Response:
    image = LOCAL_IMAGES.get(local_image_id)
    if image is None:
        raise ApiError.not_found("local_image", local_image_id)
    return Response(200, image.to_api())


def list_images(store: Store, req: Request) -> Response:
    return counted_list(req, "images", [marketplace_image(label) for label in IMAGE_LABELS.values()])


def get_image(store: Store, req: Request, image_id: str) -> Response:
    for label in IMAGE_LABELS.values():
        if stable_id("image", label.label) == image_id:
            return Response(200, marketplace_image(label))
    raise ApiError.not_found("image", image_id)


def register(router: Router) -> None:
    router.add("GET", "/marketplace/v2/local-images", list_local_images)
    router.add("GET", "/marketplace/v2/local-images/{local_image_id}", get_local_image)
    router.add("GET", "/marketplace/v2/images", list_images)
    router.add("GET", "/marketplace/v2/images/{image_id}", get_image)
