"""/v1/images: hand in a photo with its options, follow it, fetch its SVG and preview.

Uploads go through the inbox (intake.submit): the image and its options sidecar are written atomically, and
the inbox sensor takes them on its next tick, batching the images of equal options into one run."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, Security, UploadFile
from fastapi.responses import FileResponse
from fastapi.security import HTTPBearer

from v2v_resources import intake
from v2v_resources.errors import BadInputError, V2VError
from v2v_resources.palette import Palette

from ..resources import Backend, Preset
from ..sensors import options_problem
from .errors import ApiError
from .schemas import Accepted, ImageStatus, Problem
from .status import image_status, output_file

# The check itself is BearerAuth (before the body is read); this declares it in the OpenAPI docs.
bearer = HTTPBearer(description="a token whose sha256 is in api.token_hashes (`v2v api hash-token`)")
router = APIRouter(prefix="/v1/images", tags=["images"], dependencies=[Security(bearer)],
                   responses={401: {"model": Problem}, 408: {"model": Problem}, 429: {"model": Problem},
                              503: {"model": Problem}})


def _options(palette, palette_hex_list, preset, backend, backend_phase1, backend_phase2, backend_phase3,
             seed) -> dict:
    if palette and palette_hex_list:
        raise ApiError(422, "give `palette` or `palette_hex_list`, not both")
    opts: dict = {}
    if palette_hex_list:
        try:
            opts["palette"] = ",".join(c.lstrip("#") for c in Palette.from_hex(palette_hex_list).colors)
        except V2VError as e:
            raise ApiError(422, f"palette_hex_list: {e.reason}", e.fix) from None
    elif palette:
        opts["palette"] = palette
    for i, chosen in enumerate((backend_phase1, backend_phase2, backend_phase3), 1):
        if chosen or backend:
            opts[f"backend_phase{i}"] = (chosen or backend).value
    if preset:
        opts["preset"] = preset.value
    if seed is not None:
        opts["seed"] = seed
    problem = options_problem(opts)
    if problem:
        raise ApiError(422, problem, "correct the option named above")
    return opts


@router.post("", status_code=202, response_model=Accepted,
             responses={200: {"model": Accepted, "description": "the same content was sent before"},
                        413: {"model": Problem}, 415: {"model": Problem}, 422: {"model": Problem}})
def upload(
    request: Request, response: Response,
    file: Annotated[UploadFile, File(description="the photo (JPEG, PNG, WebP, TIFF, BMP or GIF)")],
    palette: Annotated[str | None, Form(description="a palette name (configs/palettes)")] = None,
    palette_hex_list: Annotated[str | None, Form(description="or the palette's colours: RRGGBB,RRGGBB,…")] = None,
    preset: Annotated[Preset | None, Form()] = None,
    backend: Annotated[Backend | None, Form(description="backend of phases I–III (auto, ml, lite)")] = None,
    backend_phase1: Annotated[Backend | None, Form()] = None,
    backend_phase2: Annotated[Backend | None, Form()] = None,
    backend_phase3: Annotated[Backend | None, Form()] = None,
    seed: Annotated[int | None, Form(description="SDXL seed")] = None,
) -> Accepted:
    """Store the photo for processing and answer with its partition key (202), or with the key it already
    has when the same content was sent before (200)."""
    st = request.app.state
    opts = _options(palette, palette_hex_list, preset, backend, backend_phase1, backend_phase2, backend_phase3,
                    seed)
    data = file.file.read(st.settings.api.max_upload_bytes + 1)
    if len(data) > st.settings.api.max_upload_bytes:
        raise ApiError(413, f"image exceeds {st.settings.api.max_upload_bytes} bytes",
                       "send a smaller image (api.max_upload_bytes)")
    try:
        sub = intake.submit(st.home, data, file.filename or "image", opts, st.settings.intake, st.formats)
    except intake.UnsupportedImage as e:
        raise ApiError(415, f"{file.filename or 'upload'}: {e.reason}", e.fix) from None
    except BadInputError as e:
        raise ApiError(422, f"{file.filename or 'upload'}: {e.reason}", e.fix) from None
    if not sub.new:
        response.status_code = 200
    base = f"/v1/images/{sub.key}"
    return Accepted(key=sub.key, duplicate=not sub.new, status_url=base, svg_url=f"{base}/svg",
                    preview_url=f"{base}/preview")


def _status(request: Request, key: str) -> dict:
    st = request.app.state
    found = image_status(st.home, st.instance, key)
    if found is None:
        raise ApiError(404, f"no image with key {key!r}", "use the key POST /v1/images answered with")
    return found


@router.get("/{key}", response_model=ImageStatus, response_model_exclude_none=True,
            responses={404: {"model": Problem}})
def status(request: Request, key: str) -> dict:
    """The image's state, and each phase's: pending, running, done (with its checks, backend and seconds)
    or failed (with the reason and the fix)."""
    return _status(request, key)


def _output(request: Request, key: str, name: str, media_type: str) -> FileResponse:
    path = output_file(request.app.state.home, key, name)
    if path is None:
        state = _status(request, key)["state"]
        raise ApiError(409, f"{key} has no {name} yet: the image is {state}",
                       "poll GET /v1/images/{key} until its state is done" if state != "failed" else
                       "see GET /v1/images/{key} for the failed phase's reason and fix")
    return FileResponse(path, media_type=media_type, filename=f"{key}{path.suffix}")


@router.get("/{key}/svg", response_class=FileResponse,
            responses={200: {"content": {"image/svg+xml": {}}}, 404: {"model": Problem}, 409: {"model": Problem}})
def svg(request: Request, key: str) -> FileResponse:
    """The palette-locked SVG."""
    return _output(request, key, "svg", "image/svg+xml")


@router.get("/{key}/preview", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}}, 404: {"model": Problem}, 409: {"model": Problem}})
def preview(request: Request, key: str) -> FileResponse:
    """The PNG preview rendered from the SVG."""
    return _output(request, key, "preview", "image/png")
