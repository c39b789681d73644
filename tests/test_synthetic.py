"""The synthetic demo videos: real mp4 files decord reads, classes told apart the way the sets promise."""

import os

import decord
import numpy as np
import pytest

from actionjax.data import synthetic as make_synthetic_module
from actionjax.data.synthetic import CLASSES, ensure_synthetic, is_complete, make_synthetic, render_clip
from actionjax.tools import browse_data


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('synthetic') / 'synthetic')
    return ensure_synthetic(out, num_train=8, num_val=4, size=32, num_frames=12)


def test_files_lists_and_decoding(root):
    assert is_complete(root)
    for kind in ('motion', 'appearance'):
        folder = os.path.join(root, kind)
        assert open(os.path.join(folder, 'classes.txt')).read().split() == list(CLASSES[kind])
        for split, count in (('train', 8), ('val', 4)):
            lines = open(os.path.join(folder, f'{split}_list.txt')).read().split('\n')[:-1]
            assert len(lines) == count
            labels = sorted(int(line.split()[1]) for line in lines)
            assert labels == sorted(np.arange(count) % 4)  # balanced classes
            for line in lines:
                reader = decord.VideoReader(os.path.join(folder, 'videos', line.split()[0]))
                assert len(reader) == 12
                assert reader.get_batch([0, 11]).asnumpy().shape == (2, 32, 32, 3)


def test_ensure_synthetic_is_idempotent(root):
    stamp = os.path.getmtime(os.path.join(root, 'motion', 'train_list.txt'))
    assert ensure_synthetic(root) == root
    assert os.path.getmtime(os.path.join(root, 'motion', 'train_list.txt')) == stamp
    leftovers = [name for name in os.listdir(os.path.dirname(root)) if name.startswith('.synthetic-')]
    assert not leftovers


def test_generation_is_deterministic(tmp_path):
    a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
    for out in (a, b):
        os.makedirs(out)
        make_synthetic(out, sets=['motion'], num_train=2, num_val=1, size=32, num_frames=6)
    for name in ('train/000000.mp4', 'val/000000.mp4'):
        frames = [decord.VideoReader(os.path.join(out, 'motion', 'videos', name))[:].asnumpy()
                  for out in (a, b)]
        np.testing.assert_array_equal(*frames)


def test_motion_classes_share_every_frame_law():
    """With the same random draws, classes differ only in where the square goes next.

    Frame 0 is the same picture for every direction, and the start position is uniform
    over the (wrapping) frame, so no single frame carries the class.
    """
    clips = [render_clip('motion', label, np.random.default_rng(5), size=32, num_frames=8)
             for label in range(4)]
    for clip in clips[1:]:
        np.testing.assert_array_equal(clip[0], clips[0][0])
        assert not np.array_equal(clip[-1], clips[0][-1])


def black(rng, height, width):
    return np.zeros((height, width, 3), np.float32)


def test_motion_direction_is_the_label(monkeypatch):
    monkeypatch.setattr(make_synthetic_module, '_background', black)
    for label, direction in enumerate([(0, -1), (0, 1), (-1, 0), (1, 0)]):  # left, right, up, down
        clip = render_clip('motion', label, np.random.default_rng(label), size=64, num_frames=9).astype(float)
        # on a black background the circular cross-correlation peaks at the square's shift
        a, b = clip[0].mean(-1), clip[8].mean(-1)
        corr = np.real(np.fft.ifft2(np.conj(np.fft.fft2(a)) * np.fft.fft2(b)))
        shift = np.array(np.unravel_index(np.argmax(corr), corr.shape))
        shift = (shift + 32) % 64 - 32
        assert tuple(np.sign(shift)) == direction and np.abs(shift).max() >= 8


def test_appearance_classes_differ_in_colour_and_shape(monkeypatch):
    monkeypatch.setattr(make_synthetic_module, '_background', black)
    colours = []
    for label in range(4):
        frame = render_clip('appearance', label, np.random.default_rng(label), size=64, num_frames=1)[0]
        colours.append(frame[frame.max(-1) > 0].mean(0))
    assert [int(np.argmax(c)) for c in colours[:3]] == [0, 1, 2]  # red, green, blue
    assert colours[3][0] > 150 and colours[3][1] > 150 and colours[3][2] < 100  # yellow
    fill = [make_synthetic_module._shape_mask(label, 40).mean() for label in range(4)]
    assert len({round(f, 2) for f in fill}) == 4  # disk, square, triangle and cross


def test_browse_data_draws_a_grid(root, tmp_path):
    config = os.path.join(os.path.dirname(__file__), '..', 'configs/_base_/datasets/synthetic_motion.py')
    motion = os.path.join(root, 'motion')
    out = tmp_path / 'grid.png'
    browse_data.main(['--config', config, '--out', str(out), '--n', '2', '--cfg-options',
                      f'data.train.ann_file={motion}/train_list.txt',
                      f'data.train.data_prefix={motion}/videos',
                      f'data.train.synthetic_root={root}', 'data.train.pipeline.3.input_size=24',
                      'data.train.pipeline.4.scale=(24,24)'])
    import matplotlib.image

    image = matplotlib.image.imread(str(out))
    assert image.shape[0] > 100 and image.shape[1] > 400
