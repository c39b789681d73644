"""``python -m actionjax.tools.bsn_proposal_generation configs/bsn_pgm.py --mode test``: BSN's PGM step.

Between TEM and PEM: for every video of the split's annotation file it reads the TEM
results (``<tem_results_dir>/<video>.csv``, written by testing ``configs/bsn_tem.py``), and
writes

* ``<pgm_proposals_dir>/<video>.csv``: candidate proposals with their scores and their
  best IoU / IoA with the ground truth (``pgm_proposals_cfg``);
* ``<pgm_features_dir>/<video>.npy``: the BSP features of the best ``top_k`` of them
  (``pgm_features_train_cfg`` / ``pgm_features_test_cfg``),

which ``LoadProposals`` reads for PEM (``configs/bsn_pem.py``). Files and numbers are those
of MMAction2's ``tools/misc/bsn_proposal_generation.py``; ``pgm_*_thread`` worker processes
share the videos.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import os.path as osp
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from actionjax.models.localizers.bsn_pgm import PROPOSAL_HEADER, bsp_feature, candidate_proposals


def load_video_infos(ann_file: str) -> list[dict[str, Any]]:
    """The videos of an ActivityNet annotation file, in file order, with ``video_name``."""
    with open(ann_file) as f:
        database = json.load(f)
    return [dict(info, video_name=name) for name, info in database.items()]


def read_table(path: str) -> np.ndarray:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist; run the previous BSN step first (TEM testing writes '
                                'tem_results_dir, the proposal step pgm_proposals_dir)')
    return np.loadtxt(path, dtype=np.float32, delimiter=',', skiprows=1, ndmin=2)


def _proposals_of(info: Mapping[str, Any], tem_results_dir: str, out_dir: str, temporal_scale: int,
                  peak_threshold: float) -> None:
    tem = read_table(osp.join(tem_results_dir, info['video_name'] + '.csv'))
    table = candidate_proposals(tem, info, temporal_scale, peak_threshold)
    np.savetxt(osp.join(out_dir, info['video_name'] + '.csv'), table, header=PROPOSAL_HEADER, delimiter=',',
               comments='')


def _features_of(info: Mapping[str, Any], tem_results_dir: str, proposals_dir: str, out_dir: str, top_k: int,
                 **kwargs: Any) -> None:
    tem = read_table(osp.join(tem_results_dir, info['video_name'] + '.csv'))
    proposals = read_table(osp.join(proposals_dir, info['video_name'] + '.csv'))[:top_k]
    np.save(osp.join(out_dir, info['video_name'] + '.npy'), bsp_feature(tem, proposals, **kwargs))


def _run(fn: Any, video_infos: list[dict[str, Any]], workers: int, **kwargs: Any) -> None:
    if workers <= 1:
        for info in video_infos:
            fn(info, **kwargs)
        return
    # spawn, not fork: the parent may already run JAX's threads, which a forked child would inherit locked
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn')) as pool:
        for future in [pool.submit(fn, info, **kwargs) for info in video_infos]:
            future.result()  # re-raises a worker's error, naming the file


def generate_proposals(ann_file: str, tem_results_dir: str, pgm_proposals_dir: str, temporal_scale: int,
                       peak_threshold: float, pgm_proposals_thread: int = 1) -> None:
    """Candidate proposals of every video of ``ann_file`` (``pgm_proposals_cfg``'s keys)."""
    os.makedirs(pgm_proposals_dir, exist_ok=True)
    _run(_proposals_of, load_video_infos(ann_file), pgm_proposals_thread, tem_results_dir=tem_results_dir,
         out_dir=pgm_proposals_dir, temporal_scale=temporal_scale, peak_threshold=peak_threshold)


def generate_features(ann_file: str, tem_results_dir: str, pgm_proposals_dir: str, pgm_features_dir: str,
                      top_k: int = 1000, pgm_features_thread: int = 1, **kwargs: Any) -> None:
    """BSP features of every video's best ``top_k`` proposals (``pgm_features_*_cfg``'s keys)."""
    os.makedirs(pgm_features_dir, exist_ok=True)
    _run(_features_of, load_video_infos(ann_file), pgm_features_thread, tem_results_dir=tem_results_dir,
         proposals_dir=pgm_proposals_dir, out_dir=pgm_features_dir, top_k=top_k, **kwargs)


def main(argv: list[str] | None = None) -> None:
    from actionjax.config import Config

    parser = argparse.ArgumentParser(prog='python -m actionjax.tools.bsn_proposal_generation',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='BSN PGM config, e.g. configs/bsn_pgm.py')
    parser.add_argument('--mode', choices=['train', 'test'], default='test',
                        help='which annotation file: ann_file_train or ann_file_val (default: test)')
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    ann_file = cfg['ann_file_train'] if args.mode == 'train' else cfg['ann_file_val']
    generate_proposals(ann_file, cfg['tem_results_dir'], cfg['pgm_proposals_dir'], **cfg['pgm_proposals_cfg'])
    print(f'proposals written to {cfg["pgm_proposals_dir"]}')
    features_cfg = cfg[f'pgm_features_{args.mode}_cfg']
    generate_features(ann_file, cfg['tem_results_dir'], cfg['pgm_proposals_dir'], cfg['pgm_features_dir'],
                      **features_cfg)
    print(f'BSP features written to {cfg["pgm_features_dir"]}')


if __name__ == '__main__':
    main()
