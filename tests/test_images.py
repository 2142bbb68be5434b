"""physforge.images.load_image: hostile and broken image inputs are refused by name."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from physforge.errors import ImageInputError, InputFileError, PhysforgeError
from physforge.images import load_image


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with one tiny IDAT: a bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@pytest.fixture()
def picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)


def test_round_trip_png_and_jpeg(tmp_path, picture):
    path = tmp_path / "scene.png"
    path.write_bytes(_png(picture))
    np.testing.assert_array_equal(load_image(path), picture)
    np.testing.assert_array_equal(load_image(path.read_bytes()), picture)
    jpeg = tmp_path / "scene.jpg"
    Image.fromarray(picture).save(jpeg, quality=95)
    decoded = load_image(jpeg)
    assert decoded.shape == (24, 32, 3) and decoded.dtype == np.uint8


def test_grey_alpha_and_16bit_become_rgb(tmp_path):
    grey = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    out = load_image(_png(grey))
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out[..., 0], grey)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:8, :, 3] = 255  # top half opaque red, bottom half transparent -> white
    out = load_image(_png(rgba))
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[-1, -1]) == (255, 255, 255)
    deep = (np.arange(16 * 16, dtype=np.uint16).reshape(16, 16) * 200)
    out = load_image(_png(deep))
    assert out.shape == (16, 16, 3) and out.min() == 0 and out.max() == 255


def test_errors_are_physforge_value_errors(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageInputError, match=r"empty\.png: file is empty") as caught:
        load_image(path)
    assert isinstance(caught.value, InputFileError) and isinstance(caught.value, PhysforgeError)
    assert isinstance(caught.value, ValueError)


def test_missing_and_directory(tmp_path):
    with pytest.raises(ImageInputError, match="nothere.png: file not found"):
        load_image(tmp_path / "nothere.png")
    with pytest.raises(ImageInputError, match="not a regular file"):
        load_image(tmp_path)


def test_truncated(tmp_path, picture):
    data = _png(picture)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match=r"cut\.png: (truncated|corrupt)"):
        load_image(path)
    jpeg = io.BytesIO()
    Image.fromarray(picture).save(jpeg, format="JPEG")
    with pytest.raises(ImageInputError, match=r"photo\.jpg: (truncated|corrupt)"):
        load_image(jpeg.getvalue()[:300], name="photo.jpg")


def test_wrong_type_behind_extension(tmp_path, picture):
    text = tmp_path / "notes.png"
    text.write_text("<html>this is not a picture</html>")
    with pytest.raises(ImageInputError, match=r"notes\.png: not a recognised image"):
        load_image(text)
    jpeg_named_png = tmp_path / "liar.png"
    Image.fromarray(picture).save(jpeg_named_png, format="JPEG")
    with pytest.raises(ImageInputError, match=r"liar\.png: contents are JPEG, not what the extension '\.png'"):
        load_image(jpeg_named_png)
    svg = tmp_path / "vector.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(ImageInputError, match="not a recognised image"):
        load_image(svg)


def test_zero_size_header():
    with pytest.raises(ImageInputError, match=r"zero-size image \(0x10 px\)"):
        load_image(_png_header_only(0, 10))


def test_decompression_bomb_refused_from_header(monkeypatch):
    bomb = _png_header_only(100_000, 100_000)  # 10 gigapixels claimed by a ~100-byte file
    assert len(bomb) < 200

    # The pixel buffer must never be allocated: fail loudly if PIL is asked to decode.
    def no_decode(self, *args, **kwargs):
        raise AssertionError("decoder ran on a decompression bomb")

    monkeypatch.setattr(Image.Image, "load", no_decode)
    with pytest.raises(ImageInputError, match=r"bomb\.png: .*(decompression bomb|max_pixels)"):
        load_image(bomb, name="bomb.png")


def test_size_limits(picture):
    data = _png(picture)  # 32 x 24
    with pytest.raises(ImageInputError, match=r"32x24 px is too small.*min_side"):
        load_image(data, min_side=30)
    with pytest.raises(ImageInputError, match=r"768 pixels exceeds the 500-pixel limit"):
        load_image(data, max_pixels=500)
    with pytest.raises(ImageInputError, match=r"a side exceeds 16 px \(max_side\)"):
        load_image(data, max_side=16, min_side=4)
    with pytest.raises(ImageInputError, match=r"bytes exceeds the 10-byte limit \(max_bytes\)"):
        load_image(data, max_bytes=10)
    with pytest.raises(ValueError, match=r"ImageLimits.min_side must be a positive int"):
        load_image(data, min_side=0)


def test_bad_source_type():
    with pytest.raises(TypeError, match="source must be a path or bytes"):
        load_image(123)  # type: ignore[arg-type]


def test_cli_dynamics_sample_refuses_a_bad_image(tmp_path):
    from typer.testing import CliRunner

    from physforge.cli.dynamics import app

    fake = tmp_path / "scene.png"
    fake.write_bytes(b"GIF89a" + b"\x00" * 40)  # a broken GIF behind a .png name
    result = CliRunner().invoke(app, ["sample", str(fake), "--out", str(tmp_path / "o"),
                                      "--checkpoint", str(tmp_path / "ckpt"), "--world", str(tmp_path / "w.json")])
    assert result.exit_code == 2, result.output
    assert "scene.png" in result.output and "GIF" in result.output


_FUZZ_EXAMPLES = int(__import__("os").environ.get("PHYSFORGE_FUZZ_EXAMPLES", "60"))


def _seed_images() -> list[bytes]:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)
    out = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        out.append(buffer.getvalue())
    return out


_SEEDS = _seed_images()


@settings(max_examples=_FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(range(len(_SEEDS))),
       st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=8),
       st.integers(0, 4096), st.binary(max_size=64))
def test_fuzzed_image_bytes_decode_or_raise_image_input_error(seed, flips, cut, junk):
    """Corrupted encodings of every accepted format: a (H, W, 3) uint8 array or ImageInputError."""
    data = bytearray(_SEEDS[seed])
    for position, value in flips:
        if position < len(data):
            data[position] = value
    data = bytes(data[: max(cut, 1)]) + junk if cut < len(data) else bytes(data) + junk
    try:
        image = load_image(data, min_side=1)
    except ImageInputError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
