import numpy as np
import pytest
from PIL import Image

from ovdet.utils.image import ImageReadError, list_images, load_image


def test_rgb_gray_rgba_16bit_float(tmp_path):
    rgb = np.random.RandomState(0).randint(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(load_image(rgb), rgb)
    assert np.array_equal(load_image(Image.fromarray(rgb)), rgb)

    gray = rgb[:, :, 0]
    out = load_image(gray)
    assert out.shape == (5, 7, 3) and np.array_equal(out[:, :, 2], gray)

    rgba = np.concatenate([rgb, np.full((5, 7, 1), 255, np.uint8)], axis=2)
    rgba[0, 0, 3] = 0  # fully transparent pixel composites to white
    out = load_image(rgba)
    assert np.array_equal(out[1:], rgb[1:]) and tuple(out[0, 0]) == (255, 255, 255)

    deep = gray.astype(np.uint16) * 257  # 16-bit with the same content
    assert np.array_equal(load_image(deep)[:, :, 0], gray)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert np.array_equal(load_image(tmp_path / "deep.png")[:, :, 1], gray)

    assert np.array_equal(load_image(rgb / 255.0), rgb)


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(ImageReadError, match="missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageReadError, match="corrupt.jpg"):
        load_image(bad)
    with pytest.raises(ImageReadError, match="shape"):
        load_image(np.zeros((2, 3, 5), np.uint8))


def test_list_images(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.png", "a/y.JPG", "a/notes.txt", "z.png"):
        (tmp_path / name).write_bytes(b"")
    found = list_images([str(tmp_path / "a"), str(tmp_path / "*.png"), str(tmp_path / "z.png")])
    assert [p.name for p in found] == ["x.png", "y.JPG", "z.png"]
    with pytest.raises(FileNotFoundError, match="nothing"):
        list_images([str(tmp_path / "nothing*.png")])


def test_list_images_refuses_a_folder_without_images(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"input folder .*docs.* holds no image files"):
        list_images([str(tmp_path / "docs")])
