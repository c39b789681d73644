"""BSN's proposal generation (PGM) against MMAction2 1.2.0's generate_candidate_proposals and
generate_bsp_feature on TEM result tables (tests/fixtures/localizers/pgm, pgm_tiny.npz)."""

from __future__ import annotations

import json
import os

import numpy as np

from actionjax.data.pipelines import LoadProposals
from actionjax.models.localizers.bsn_pgm import bsp_feature, candidate_proposals
from actionjax.tools import bsn_proposal_generation as pgm

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'localizers')
GOLDEN = np.load(os.path.join(HERE, 'pgm_tiny.npz'))
with open(os.path.join(HERE, 'localizers.json')) as _f:
    VIDEO_INFOS = json.load(_f)['video_infos']


def table(kind: str, name: str) -> np.ndarray:
    return np.loadtxt(os.path.join(HERE, 'pgm', kind, f'{name}.csv'), dtype=np.float32, delimiter=',',
                      skiprows=1)


def test_candidate_proposals_and_bsp_features_equal_mmaction2s():
    """Bit for bit: proposal tables (scores, IoU/IoA with the ground truth) and BSP features."""
    for info in VIDEO_INFOS:
        name = info['video_name']
        tem = table('tem_results', name)
        np.testing.assert_array_equal(candidate_proposals(tem, info, 16, 0.5), GOLDEN[f'proposals_{name}'])
        features = bsp_feature(tem, table('proposals', name)[:40])
        np.testing.assert_array_equal(features, GOLDEN[f'bsp_feature_{name}'])


def test_tool_writes_what_load_proposals_reads(tmp_path):
    """The PGM tool over an annotation file writes MMAction2's files; LoadProposals reads them."""
    ann_file = tmp_path / 'anno.json'
    ann_file.write_text(json.dumps({info['video_name']: info for info in VIDEO_INFOS}))
    tem_dir = os.path.join(HERE, 'pgm', 'tem_results')
    pgm.generate_proposals(str(ann_file), tem_dir, str(tmp_path / 'proposals'), temporal_scale=16,
                           peak_threshold=0.5, pgm_proposals_thread=2)
    pgm.generate_features(str(ann_file), tem_dir, str(tmp_path / 'proposals'), str(tmp_path / 'features'),
                          top_k=40, pgm_features_thread=1)
    for info in VIDEO_INFOS:
        name = info['video_name']
        written = (tmp_path / 'proposals' / f'{name}.csv').read_text()
        assert written == open(os.path.join(HERE, 'pgm', 'proposals', f'{name}.csv')).read()
        np.testing.assert_array_equal(np.load(tmp_path / 'features' / f'{name}.npy'),
                                      GOLDEN[f'bsp_feature_{name}'])
    results = LoadProposals(top_k=40, pgm_proposals_dir=str(tmp_path / 'proposals'),
                            pgm_features_dir=str(tmp_path / 'features'))(dict(video_name='v_tiny1'))
    assert results['bsp_feature'].shape == (40, 32) and len(results['tmin']) == 40
