"""The bad-input catalogue: every input ends in samples or in failures rows (path, stage,
reason) with counters; the run still succeeds and says what it dropped. Each input is
built by its own builder; one pipeline run covers them all."""
from __future__ import annotations

import json
import os
import re
import struct
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conftest import read_rgb
from landmarks.frames import read_frames
from pipelines.cli import main
from pipelines.failures import as_text

FRAMES = 2
GRACE = "real_photos/grace_hopper/pypi_matplotlib__grace_hopper.jpg"
ASTRONAUT = "real_photos/eileen_collins/pypi_skimage__astronaut.png"


def write_video(path: Path, frames: list[np.ndarray], grey: bool = False) -> Path:
    """mp4v video of RGB frames (all one size)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (width, height), not grey)
    for frame in frames:
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        writer.write(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if grey else bgr)
    writer.release()
    return path


def set_rotation(path: Path, degrees_clockwise: int = 90) -> None:
    """Write a display matrix rotating by 90 degrees into the MP4 track header ('tkhd')."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    matrix_at = box + 4 + (40 if data[box + 4] == 0 else 52)
    assert degrees_clockwise == 90
    data[matrix_at:matrix_at + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


# Each builder makes one input in `folder` from the shared data and returns its path.
def zero_byte(folder, data):
    path = folder / "zero_byte.mp4"
    path.write_bytes(b"")
    return path


def _truncated(folder, data, source: str, name: str):
    path = folder / name
    whole = (data / "real_videos" / source).read_bytes()
    path.write_bytes(whole[: len(whole) * 2 // 5])
    return path


def truncated_mp4_index_first(folder, data):
    """Cut at 40 % of a file whose index ('moov') precedes the frames: the early frames decode."""
    return _truncated(folder, data, "liveportrait__d20.mp4", "truncated_index_first.mp4")


def truncated_mp4_index_last(folder, data):
    """Cut at 40 % of a file whose index comes last: nothing is decodable."""
    return _truncated(folder, data, "liveportrait__d11.mp4", "truncated_index_last.mp4")


def text_named_mp4(folder, data):
    path = folder / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    return path


def no_face_video(folder, data):
    grass = read_rgb(data / "no_face/face_alignment__grass.jpg")[:400, :400]
    return write_video(folder / "grass.mp4", [grass] * 3)


def several_faces(folder, data):
    a = cv2.resize(read_rgb(data / GRACE), (400, 460))
    b = cv2.resize(read_rgb(data / ASTRONAUT), (400, 460))
    return write_video(folder / "two_people.mp4", [np.hstack([a, b])] * 3)


def small_face(folder, data):
    path = folder / "small_face.png"
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(data / GRACE)), (120, 140)))
    return path


def greyscale_video(folder, data):
    return write_video(folder / "grey.mp4", [read_rgb(data / GRACE)] * 3, grey=True)


def one_frame_video(folder, data):
    return write_video(folder / "one_frame.mp4", [read_rgb(data / ASTRONAUT)])


def rotated_video(folder, data):
    sideways = cv2.rotate(read_rgb(data / GRACE), cv2.ROTATE_90_COUNTERCLOCKWISE)
    path = write_video(folder / "rotated.mp4", [sideways] * 3)
    set_rotation(path)
    return path


def video_4k(folder, data):
    frame = cv2.resize(read_rgb(data / ASTRONAUT), (2160, 2160))
    canvas = np.zeros((2160, 3840, 3), np.uint8)
    canvas[:, 840:3000] = frame
    return write_video(folder / "uhd_4k.mp4", [canvas] * 2)


def corrupt_jpeg(folder, data):
    path = folder / "corrupt.jpg"
    good = (data / GRACE).read_bytes()
    path.write_bytes(good[:20] + bytes(range(256)) * 8)
    return path


def corrupt_png(folder, data):
    path = folder / "corrupt.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\xff" * 100)
    return path


def no_permission(folder, data):
    path = _copy_as(folder, data, GRACE, "locked.jpg")
    path.chmod(0)
    return path


def dangling_link(folder, data):
    path = folder / "gone.jpg"
    path.symlink_to(folder / "does-not-exist.jpg")
    return path


def _copy_as(folder, data, source: str, name: str):
    """A copy of a shared file under `name`, made distinct by trailing bytes (which
    decoders ignore), so no two catalogue inputs have the same content."""
    path = folder / name
    path.write_bytes((data / source).read_bytes() + name.encode())
    return path


def name_with_spaces(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "a face with spaces.png")


def non_ascii_name(folder, data):
    return _copy_as(folder, data, GRACE, "visage_é_ü_漢.jpg")


def leading_dash(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "-dash.png")


def symlink_loop(folder, data):
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    return folder / "loop"


def zero_byte_image(folder, data):
    path = folder / "empty.jpg"
    path.write_bytes(b"")
    return path


def fifo_named_video(folder, data):
    """A FIFO never written to: opening it for reading would block forever."""
    path = folder / "pipe.mp4"
    os.mkfifo(path)
    return path


def fifo_named_image(folder, data):
    path = folder / "pipe.jpg"
    os.mkfifo(path)
    return path


def link_to_dev_zero(folder, data):
    """Reading it never ends."""
    path = folder / "zeros.jpg"
    path.symlink_to("/dev/zero")
    return path


def _face_video(folder, data, name: str, source: str = GRACE, frames: int = 2):
    return write_video(folder / name, [read_rgb(data / source)] * frames)


def clip_video(folder, data):
    """clip.mp4 beside clip.jpg and clip.MP4: three inputs, three video ids."""
    return _face_video(folder, data, "clip.mp4")


def clip_image(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "clip.jpg")


def clip_upper_case(folder, data):
    return _face_video(folder, data, "clip.MP4", ASTRONAUT, 4)


def nested_a_b(folder, data):
    """a/b.mp4 beside a-b.mp4: both map to 'a-b-mp4' and are told apart by a hash."""
    (folder / "a").mkdir(exist_ok=True)
    return _face_video(folder, data, "a/b.mp4", GRACE, 3)


def dashed_a_b(folder, data):
    return _face_video(folder, data, "a-b.mp4", ASTRONAUT, 5)


def double_underscore_name(folder, data):
    return _copy_as(folder, data, GRACE, "x__y.jpg")


def quotes_and_newline(folder, data):
    return _copy_as(folder, data, GRACE, "it's \"odd\"\nname.jpg")


def very_long_name(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "long" * 60 + ".png")


def folder_named_like_video(folder, data):
    (folder / "album.mp4").mkdir()
    return _copy_as(folder, data, GRACE, "album.mp4/inside.jpg")


def linked_sub_folder(folder, data):
    """A link to a folder outside the input: followed (it used to be skipped silently)."""
    outside = folder.parent / f"{folder.name}-outside"
    outside.mkdir()
    _copy_as(outside, data, ASTRONAUT, "linked.png")
    (folder / "linked").symlink_to(outside, target_is_directory=True)
    return folder / "linked" / "linked.png"


def link_to_file(folder, data):
    outside = folder.parent / f"{folder.name}-file"
    outside.mkdir()
    target = _copy_as(outside, data, GRACE, "target.jpg")
    path = folder / "link.jpg"
    path.symlink_to(target)
    return path


def same_bytes_as_another(folder, data):
    """The same photo under a second name would be a second 'identity' of one face (a
    pixel-identical blend pair): left out, naming the one kept."""
    first = _copy_as(folder, data, GRACE, "visage_é_ü_漢.jpg") if not (folder / "visage_é_ü_漢.jpg").exists() \
        else folder / "visage_é_ü_漢.jpg"
    path = folder / "zz_copy_of_visage.jpg"
    path.write_bytes(first.read_bytes())
    return path


def text_file(folder, data):
    path = folder / "notes.txt"
    path.write_text("not media\n")
    return path


def hidden_system_file(folder, data):
    path = folder / ".DS_Store"
    path.write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    return path


def jpeg_named_png(folder, data):
    return _copy_as(folder, data, GRACE, "really_a_jpeg.png")


def jpeg_named_mp4(folder, data):
    return _copy_as(folder, data, GRACE, "photo_named.mp4")


def wide_no_face_image(folder, data):
    """20,000 px wide, no face: the padded retry of the detector used to crash MediaPipe."""
    path = folder / "panorama.jpg"
    cv2.imwrite(str(path), np.full((1000, 20000, 3), 90, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])
    return path


def huge_jpeg_with_face(folder, data):
    """10,000 x 7,000 px (70 MP, above the 64 MP full-decode limit): decoded at half size."""
    canvas = np.full((7000, 10000, 3), 200, np.uint8)
    canvas[2000:5000, 3500:6500] = cv2.resize(cv2.imread(str(data / ASTRONAUT)), (3000, 3000))
    path = folder / "huge.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return path


def png_bomb(folder, data):
    """A small PNG whose header claims 30,000 x 30,000 px: refused before decoding."""
    import zlib
    raw = struct.pack(">II", 30000, 30000) + bytes([8, 2, 0, 0, 0])
    chunk = lambda kind, body: struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    path = folder / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", raw) + chunk(b"IDAT", zlib.compress(bytes(1000)))
                     + chunk(b"IEND", b""))
    return path


def jpeg_bomb(folder, data):
    """A real JPEG whose frame header is patched to 65,000 x 65,000 px: even at 1/8 size
    above the limit, refused before decoding."""
    good = bytearray((data / GRACE).read_bytes())
    sof = good.find(b"\xff\xc0")
    good[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    path = folder / "bomb.jpg"
    path.write_bytes(bytes(good))
    return path


def truncated_jpeg(folder, data):
    """A partial download of a photo (three quarters of it): OpenCV refuses it whole."""
    path = folder / "partial.jpg"
    whole = (data / GRACE).read_bytes()
    path.write_bytes(whole[: len(whole) * 3 // 4])
    return path


def jpeg_missing_last_byte(folder, data):
    """Found by cutting files at many points: a JPEG one byte short (no end marker) is
    refused whole by OpenCV."""
    path = folder / "one_byte_short.jpg"
    path.write_bytes((data / GRACE).read_bytes()[:-1])
    return path


def _flipped(data_bytes: bytes, seed: int, flips: int = 20) -> bytes:
    rng = np.random.default_rng(seed)
    data = bytearray(data_bytes)
    for k in rng.integers(0, len(data), flips):
        data[k] = int(rng.integers(256))
    return bytes(data)


def png_bit_flips(folder, data):
    """20 random bytes changed: PNG's checksums refuse it."""
    path = folder / "flipped.png"
    path.write_bytes(_flipped((data / ASTRONAUT).read_bytes(), 3))
    return path


def mp4_bit_flips(folder, data):
    """20 random bytes changed in a face video: the decoder conceals the damage."""
    path = folder / "flipped.mp4"
    path.write_bytes(_flipped((data / "real_videos/liveportrait__d20.mp4").read_bytes(), 4))
    return path


def random_bytes_tiff(folder, data):
    path = folder / "noise.tiff"
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


def cmyk_jpeg(folder, data):
    from PIL import Image
    path = folder / "cmyk.jpg"
    Image.open(data / GRACE).convert("CMYK").save(path, quality=90)
    return path


def sixteen_bit_png(folder, data):
    path = folder / "deep.png"
    cv2.imwrite(str(path), cv2.imread(str(data / ASTRONAUT)).astype(np.uint16) * 257)
    return path


def rgba_png(folder, data):
    path = folder / "alpha.png"
    bgr = cv2.imread(str(data / GRACE))
    cv2.imwrite(str(path), np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)]))
    return path


# ---- found by red-teaming the catalogue above (issue 16's checker uses cases not listed)
def _cut(source: str, name: str, fraction: float):
    """A builder of `source` cut to `fraction` of its bytes, named `name`."""
    def build(folder, data):
        whole = (data / "real_videos" / source).read_bytes()
        path = folder / f"{name}.mp4"
        path.write_bytes(whole[: max(1, int(len(whole) * fraction))])
        return path
    build.__name__ = name
    return build


cut_index_first_at_0_1_percent = _cut("liveportrait__d20.mp4", "cut_index_first_at_0_1_percent", 0.001)
cut_index_first_at_5_percent = _cut("liveportrait__d20.mp4", "cut_index_first_at_5_percent", 0.05)
cut_index_first_at_99_percent = _cut("liveportrait__d20.mp4", "cut_index_first_at_99_percent", 0.99)
cut_index_last_at_5_percent = _cut("liveportrait__d11.mp4", "cut_index_last_at_5_percent", 0.05)
cut_index_last_at_95_percent = _cut("liveportrait__d11.mp4", "cut_index_last_at_95_percent", 0.95)


def zero_frame_video(folder, data):
    """A writer opened and closed with no frame: a container without a frame."""
    path = folder / "zero_frames.mp4"
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64)).release()
    return path


def png_named_mp4(folder, data):
    path = folder / "png_inside.mp4"
    path.write_bytes((data / ASTRONAUT).read_bytes())
    return path


def bmp_bomb(folder, data):
    """A 2 x 2 BMP whose header claims 40,000 x 40,000 px."""
    bmp = bytearray(cv2.imencode(".bmp", np.zeros((2, 2, 3), np.uint8))[1].tobytes())
    struct.pack_into("<ii", bmp, 18, 40000, 40000)
    path = folder / "bomb.bmp"
    path.write_bytes(bytes(bmp))
    return path


def _pil_copy(name: str, source: str, mode: str, **save):
    def build(folder, data):
        from PIL import Image
        path = folder / name
        Image.open(data / source).convert(mode).save(path, **save)
        return path
    build.__name__ = name.replace(".", "_")
    return build


grey_jpeg = _pil_copy("grey.jpg", GRACE, "L")
grey_alpha_png = _pil_copy("grey_alpha.png", GRACE, "LA")
palette_png = _pil_copy("palette.png", ASTRONAUT, "P")
webp_image = _pil_copy("face.webp", ASTRONAUT, "RGB", quality=90)
bmp_image = _pil_copy("face.bmp", GRACE, "RGB")
gif_image = _pil_copy("face.gif", GRACE, "RGB")


def multipage_tiff(folder, data):
    """Two pages, a face on each: the first is read (README: a multi-page TIFF gives its
    first page)."""
    from PIL import Image
    pages = [Image.open(data / GRACE).convert("RGB"), Image.open(data / ASTRONAUT).convert("RGB")]
    path = folder / "pages.tiff"
    pages[0].save(path, save_all=True, append_images=pages[1:])
    return path


def exif_rotated_jpeg(folder, data):
    """Pixels stored sideways with EXIF orientation 6 (rotate 90 degrees to show), as
    phones write them: decoded upright."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 6
    path = folder / "phone_photo.jpg"
    Image.open(data / GRACE).rotate(90, expand=True).save(path, exif=exif.tobytes(), quality=95)
    return path


def glob_characters_name(folder, data):
    return _copy_as(folder, data, GRACE, "face[1]*?.jpg")


def percent_and_hash_name(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "100% #1.png")


def backslash_name(folder, data):
    return _copy_as(folder, data, GRACE, "back\\slash.jpg")


def longest_ascii_name(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "n" * 251 + ".png")          # 255 bytes


def longest_unicode_name(folder, data):
    return _copy_as(folder, data, GRACE, "é" * 125 + ".jpg")             # 254 bytes


def upper_case_jpeg_extension(folder, data):
    return _copy_as(folder, data, ASTRONAUT, "UPPER.JPEG")


def name_not_utf8(folder, data):
    """A name in another encoding (Latin-1 'é'): the tables hold text, so it is left out
    with a row that shows the byte as \\xe9, and the run goes on."""
    path = folder / os.fsdecode(b"caf\xe9.jpg")
    path.write_bytes((data / GRACE).read_bytes() + b"latin-1")
    return path


def hidden_media_file(folder, data):
    return _copy_as(folder, data, ASTRONAUT, ".hidden_face.png")


def apple_double_file(folder, data):
    """macOS leaves '._<name>' resource files beside copied photos."""
    path = folder / "._holiday.jpg"
    path.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + bytes(4000))
    return path


def hidden_thumbnail_folder(folder, data):
    """A thumbnail cache: smaller copies of the photos, which would be second 'videos' of the
    same faces."""
    (folder / ".thumbnails").mkdir()
    _copy_as(folder, data, GRACE, ".thumbnails/thumb.jpg")
    return folder / ".thumbnails"


def one_pixel_image(folder, data):
    path = folder / "pixel.png"
    cv2.imwrite(str(path), np.full((1, 1, 3), 128, np.uint8))
    return path


def one_pixel_high_image(folder, data):
    path = folder / "line.png"
    cv2.imwrite(str(path), np.full((1, 5000, 3), 128, np.uint8))
    return path


def very_tall_image(folder, data):
    path = folder / "tall.png"
    cv2.imwrite(str(path), np.full((60000, 3, 3), 128, np.uint8))
    return path


def two_pixel_video(folder, data):
    return write_video(folder / "tiny.mp4", [np.full((2, 2, 3), 100, np.uint8)] * 3)


def html_named_jpeg(folder, data):
    """What a failed download saves under the photo's name."""
    path = folder / "download.jpg"
    path.write_text("<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
    return path


def partial_download(folder, data):
    path = folder / "clip.mp4.part"
    path.write_bytes((data / "real_videos/liveportrait__d0.mp4").read_bytes()[:5000])
    return path


def link_to_dev_null(folder, data):
    path = folder / "null.mp4"
    path.symlink_to("/dev/null")
    return path


def hard_link_duplicate(folder, data):
    """A second name of one file (a hard link) is its duplicate."""
    first = _copy_as(folder, data, ASTRONAUT, "original.png")
    path = folder / "zz_hard_link.png"
    os.link(first, path)
    return path


def half_png(folder, data):
    path = folder / "half.png"
    whole = (data / ASTRONAUT).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def m4v_video(folder, data):
    return _face_video(folder, data, "apple.m4v", ASTRONAUT, 2)


def mkv_video(folder, data):
    return write_video(folder / "matroska.mkv", [read_rgb(data / GRACE)] * 2)


def avi_mjpeg_video(folder, data):
    frames = [cv2.cvtColor(read_rgb(data / ASTRONAUT), cv2.COLOR_RGB2BGR)] * 2
    path = folder / "motion.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path



READ_AS_ROOT = os.geteuid() == 0
# builder -> expected outcome: ("samples", None) or ("failure", "stage/reason"), or both
CATALOGUE = {
    zero_byte: {"failure": "decode/undecodable"},
    truncated_mp4_index_first: {"samples": True, "failure": "decode/truncated"},
    truncated_mp4_index_last: {"failure": "decode/undecodable"},
    text_named_mp4: {"failure": "decode/undecodable"},
    no_face_video: {"failure": "detect/no_face"},
    several_faces: {"samples": True},
    small_face: {"failure": "detect/face_too_small"},
    greyscale_video: {"samples": True},
    one_frame_video: {"samples": True},
    rotated_video: {"samples": True},
    video_4k: {"samples": True},
    corrupt_jpeg: {"failure": "decode/undecodable"},
    corrupt_png: {"failure": "decode/undecodable"},
    no_permission: {"samples": True} if READ_AS_ROOT else {"failure": "read/unreadable"},
    dangling_link: {"failure": "read/unreadable"},
    name_with_spaces: {"samples": True},
    non_ascii_name: {"samples": True},
    leading_dash: {"samples": True},
    symlink_loop: {"failure": "read/link_loop"},   # the loop is not followed, nothing is read twice
    zero_byte_image: {"failure": "decode/undecodable"},
    fifo_named_video: {"failure": "read/not_regular_file"},
    fifo_named_image: {"failure": "read/not_regular_file"},
    link_to_dev_zero: {"failure": "read/not_regular_file"},
    clip_video: {"samples": True},
    clip_image: {"samples": True},
    clip_upper_case: {"samples": True},
    nested_a_b: {"samples": True},
    dashed_a_b: {"samples": True},
    double_underscore_name: {"samples": True},
    quotes_and_newline: {"samples": True},
    very_long_name: {"samples": True},
    folder_named_like_video: {"samples": True},
    linked_sub_folder: {"samples": True},
    link_to_file: {"samples": True},
    same_bytes_as_another: {"failure": "read/duplicate_content"},
    text_file: {"failure": "read/unsupported_type"},
    hidden_system_file: {"failure": "read/unsupported_type"},
    jpeg_named_png: {"samples": True},
    jpeg_named_mp4: {"samples": True},        # FFmpeg reads a JPEG as a one-frame video
    wide_no_face_image: {"failure": "detect/no_face"},
    huge_jpeg_with_face: {"samples": True},
    png_bomb: {"failure": "decode/too_many_pixels"},
    jpeg_bomb: {"failure": "decode/too_many_pixels"},
    truncated_jpeg: {"failure": "decode/undecodable"},
    jpeg_missing_last_byte: {"failure": "decode/undecodable"},
    png_bit_flips: {"failure": "decode/undecodable"},
    mp4_bit_flips: {"samples": True},
    random_bytes_tiff: {"failure": "decode/undecodable"},
    cmyk_jpeg: {"samples": True},
    sixteen_bit_png: {"samples": True},
    rgba_png: {"samples": True},
    cut_index_first_at_0_1_percent: {"failure": "decode/undecodable"},
    cut_index_first_at_5_percent: {"failure": "decode/undecodable"},
    cut_index_first_at_99_percent: {"samples": True, "failure": "decode/truncated"},
    cut_index_last_at_5_percent: {"failure": "decode/undecodable"},
    cut_index_last_at_95_percent: {"failure": "decode/undecodable"},
    zero_frame_video: {"failure": "decode/undecodable"},
    png_named_mp4: {"samples": True},             # FFmpeg reads a PNG as a one-frame video too
    bmp_bomb: {"failure": "decode/too_many_pixels"},
    grey_jpeg: {"samples": True},
    grey_alpha_png: {"samples": True},
    palette_png: {"samples": True},
    webp_image: {"samples": True},
    bmp_image: {"samples": True},
    gif_image: {"failure": "read/unsupported_type"},     # OpenCV is built without GIF
    multipage_tiff: {"samples": True},
    exif_rotated_jpeg: {"samples": True},
    glob_characters_name: {"samples": True},
    percent_and_hash_name: {"samples": True},
    backslash_name: {"samples": True},
    longest_ascii_name: {"samples": True},
    longest_unicode_name: {"samples": True},
    upper_case_jpeg_extension: {"samples": True},
    name_not_utf8: {"failure": "read/name_not_utf8"},
    hidden_media_file: {"failure": "read/hidden"},
    apple_double_file: {"failure": "read/hidden"},
    hidden_thumbnail_folder: {"failure": "read/hidden"},
    one_pixel_image: {"failure": "detect/no_face"},
    one_pixel_high_image: {"failure": "detect/no_face"},
    very_tall_image: {"failure": "detect/no_face"},
    two_pixel_video: {"failure": "detect/no_face"},
    html_named_jpeg: {"failure": "decode/undecodable"},
    partial_download: {"failure": "read/unsupported_type"},
    link_to_dev_null: {"failure": "read/not_regular_file"},
    hard_link_duplicate: {"failure": "read/duplicate_content"},
    half_png: {"failure": "decode/undecodable"},
    m4v_video: {"samples": True},
    mkv_video: {"samples": True},
    avi_mjpeg_video: {"samples": True},
}


@pytest.fixture(scope="module")
def catalogue_run(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad inputs")
    paths = {builder.__name__: builder(folder, shared_data) for builder in CATALOGUE}
    output = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(folder), "--output", str(output),
                                       "--frames-per-video", str(FRAMES), "--samples-per-shard", "50"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    faces = pq.read_table(output / "faces" / "faces.parquet").to_pylist()
    failures = pq.read_table(output / "failures.parquet").to_pylist()
    relative = {name: as_text(path.relative_to(folder).as_posix()) for name, path in paths.items()}  # as rows name them
    return relative, faces, failures, result.output, output


@pytest.mark.parametrize("builder", list(CATALOGUE), ids=[b.__name__ for b in CATALOGUE])
def test_every_bad_input_ends_in_samples_or_failure_rows(catalogue_run, builder):
    paths, faces, failures, _, _ = catalogue_run
    path = paths[builder.__name__]
    expected = CATALOGUE[builder]
    mine = [f for f in faces if f["path"] == path]
    rows = {f"{r['stage']}/{r['reason']}" for r in failures if r["path"] == path}
    assert bool(mine) == bool(expected.get("samples")), (builder.__name__, rows)
    if "failure" in expected:
        assert expected["failure"] in rows, (builder.__name__, rows)
    else:
        assert not rows, (builder.__name__, rows)


def test_summary_states_the_failure_counts(catalogue_run):
    _, faces, failures, log, _ = catalogue_run
    counts = Counter(r["reason"] for r in failures)
    for reason, count in counts.items():
        assert f"{reason:<22}{count}" in log
    assert f"dropped          {sum(counts.values())}" in log
    assert f"faces kept       {len(faces)}" in log
    assert len({f["key"] for f in faces}) == len(faces)   # nothing read twice through the link loop


def test_the_catalogues_shards_train_without_a_read_failure(catalogue_run, tmp_path):
    """The samples of every odd name (255-byte, unicode, glob characters: keys and tar member
    names past 100 bytes) are read back by the trainer."""
    import csv

    *_, output = catalogue_run
    shards = sorted(str(p) for p in output.glob("shard-*.tar"))
    steps = pq.read_table(output / "index.parquet").num_rows // 16     # one pass over (nearly) every sample
    result = CliRunner().invoke(main, ["train", "patch", *(a for s in shards for a in ("--train", s)), "--out",
                                       str(tmp_path / "run"), "--steps", str(steps), "--batch-size", "16",
                                       "--image-size", "32", "--workers", "0", "--samples-per-epoch", str(steps * 16),
                                       "--augment", "none", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "run" / "read_failures.csv") as stream:
        assert list(csv.DictReader(stream)) == []


def test_several_faces_keep_the_largest_or_all(shared_data, detector, tmp_path):
    from landmarks.detect import DetectorConfig, FaceDetector
    frame = next(read_frames(str(several_faces(tmp_path, shared_data)), 1))[1]
    assert len(detector.detect(frame)[0]) == 1
    everyone = FaceDetector(DetectorConfig(all_faces=True))
    assert len(everyone.detect(frame)[0]) == 2
    everyone.close()


def test_rotation_metadata_is_applied(shared_data, tmp_path):
    frame = next(read_frames(str(rotated_video(tmp_path, shared_data)), 1))[1]
    upright = read_rgb(shared_data / GRACE)
    assert frame.shape == upright.shape
    assert np.abs(frame.astype(int) - upright).mean() < 10      # mp4v coding noise only


def test_exif_orientation_of_photos_is_applied(shared_data, tmp_path):
    frame = next(read_frames(str(exif_rotated_jpeg(tmp_path, shared_data)), 1))[1]
    upright = read_rgb(shared_data / GRACE)
    assert frame.shape == upright.shape
    assert np.abs(frame.astype(int) - upright).mean() < 10      # JPEG coding noise only


def test_fail_fast_stops_at_the_first_failure(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    name_with_spaces(folder, shared_data)
    text_named_mp4(folder, shared_data)
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(folder), "--output",
                                       str(tmp_path / "out"), "--fail-fast"])
    assert result.exit_code == 1 and "--fail-fast" in result.output and "notes.mp4" in result.output
    assert "decode/undecodable" in result.output


def test_nothing_usable_is_an_error_not_an_empty_success(shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    no_face_video(folder, shared_data)
    zero_byte(folder, shared_data)
    result = CliRunner().invoke(main, ["run", "build_bi_shards", "--input", str(folder), "--output", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no usable face in the input" in result.output
    assert "no_face 3, undecodable 1" in result.output and "Traceback" not in result.output
    out = tmp_path / "out"
    assert pq.read_table(out / "faces" / "failures.parquet").num_rows == 4   # 3 no_face frames + the empty file
    # no table or card but the failures under a final name; the run record says it failed
    assert sorted(p.name for p in out.iterdir()) == ["faces", "failures.parquet", "run.json"]
    assert sorted(p.name for p in (out / "faces").iterdir()) == ["failures.parquet", "run.json", "shard-000000.tar",
                                                                "shard-000001.tar", "units"]
    assert json.loads((out / "run.json").read_text())["state"] == "failed"


def test_video_ids_of_colliding_names_are_unique_and_documented(catalogue_run):
    _, faces, _, _, _ = catalogue_run
    video_of = {f["path"]: f["video"] for f in faces}
    assert video_of["clip.mp4"] == "clip-mp4" and video_of["clip.jpg"] == "clip-jpg"
    assert video_of["clip.MP4"] == "clip-MP4"
    nested, dashed = video_of["a/b.mp4"], video_of["a-b.mp4"]
    assert nested != dashed and nested.startswith("a-b-mp4-") and dashed.startswith("a-b-mp4-")
    assert video_of["x__y.jpg"] == "x_y-jpg"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", v) and "__" not in v for v in video_of.values())
    keys = [f["key"] for f in faces]
    assert len(set(keys)) == len(keys)


def test_a_header_that_over_states_the_frame_count_is_not_trusted(shared_data, tmp_path):
    """Cut at 40 %, the index still claims all 175 frames; 65 decode. The sample is planned
    again over the 65, so it spans the video, and every label is a frame that exists."""
    from landmarks.frames import StreamEnded, decodable_frame_count, video_frame_count
    path = str(truncated_mp4_index_first(tmp_path, shared_data))
    assert (video_frame_count(path), decodable_frame_count(path)) == (175, 65)
    got = []
    with pytest.raises(StreamEnded, match="the header says 175 frames, the stream ends after 65"):
        for index, rgb in read_frames(path, 8):
            got.append(index)
    assert len(got) == len(set(got)) == 8 and max(got) == 64 and all(0 <= i < 65 for i in got)
    assert sorted(got) == [0, 9, 25, 27, 37, 46, 50, 64]


def test_truncated_video_row_says_what_was_sampled(catalogue_run):
    paths, _, failures, _, _ = catalogue_run
    row = next(r for r in failures if r["path"] == paths["truncated_mp4_index_first"])
    assert row["reason"] == "truncated" and "the header says 175 frames, the stream ends after 65" in row["detail"]
