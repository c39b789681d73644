"""SSN's dataset: rawframe videos with ground-truth segments and proposals (TAG proposal lists).

MMAction2 0.24.1's ``SSNDataset``. The annotation file lists, per video, its ground truths
and proposals in frames (``load_localize_proposal_file``). Proposals are sorted into
positives (IoU with a ground truth above ``assigner.positive_iou_threshold``; the ground
truths themselves too, with ``sampler.add_gt_as_proposals``), incompletes (low IoU but
mostly inside a ground truth) and backgrounds (almost no overlap, not tiny). Positives
carry regression targets towards their best ground truth (centre shift over length, log
length ratio), normalised by the dataset's mean and std (``reg_norm_consts``).

Training samples ``num_per_video`` proposals of a video in the sampler's proportions, in
the order positives, incompletes, backgrounds (taking from the whole dataset when the video
has none of a kind), each with its stage scale factors (how much of the starting / ending
augmentation lies inside the video), label, type and regression target; testing gives
every proposal's relative span, its tick boundaries on the test frames and scale factors.
Sampling draws from the loader's ``results['rng']``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from actionjax.data.datasets import BaseDataset
from actionjax.data.pipelines.rng import get_rng
from actionjax.proposals import temporal_iou
from actionjax.registry import DATASETS


def load_localize_proposal_file(path: str) -> list[tuple[str, int, list[list[str]], list[list[str]]]]:
    """A TAG proposal list: ``(video_id, num_frames, gt_rows, proposal_rows)`` per video.

    Each video is a block after a ``# index`` line: its id, frame count, fps, the number of
    ground truths then ``label start end`` rows, the number of proposals then ``label best_iou
    overlap_self start end`` rows; ``num_frames`` is the frame count times the fps field.
    """
    with open(path) as f:
        lines = [line.strip() for line in f]
    videos = []
    for is_header, block in groupby(lines, lambda line: line.startswith('#')):
        if is_header:
            continue
        block = list(block)
        num_gts = int(block[3])
        num_proposals = int(block[4 + num_gts])
        videos.append((block[0], int(float(block[1]) * float(block[2])),
                       [row.split() for row in block[4:4 + num_gts]],
                       [row.split() for row in block[5 + num_gts:5 + num_gts + num_proposals]]))
    return videos


@dataclasses.dataclass
class SSNInstance:
    """A ground truth or proposal ``[start_frame, end_frame)`` (MMAction2's ``SSNInstance``).

    ``end_frame`` is clipped to the video; ``coverage`` uses the unclipped end, as there.
    """

    start_frame: int
    end_frame: int
    num_video_frames: int
    label: int = -1
    best_iou: float = 0.0
    overlap_self: float = 0.0
    coverage: float = dataclasses.field(init=False)
    regression_targets: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        self.coverage = (self.end_frame - self.start_frame) / self.num_video_frames
        self.end_frame = min(self.end_frame, self.num_video_frames)

    def compute_regression_targets(self, gts: Sequence[SSNInstance]) -> None:
        """Centre shift over own length, log length ratio, towards the best-overlapping ground truth."""
        ious = [temporal_iou(self.start_frame, self.end_frame, gt.start_frame, gt.end_frame) for gt in gts]
        best = gts[int(np.argmax(ious))]
        centre = (self.start_frame + self.end_frame - 1) / 2
        gt_centre = (best.start_frame + best.end_frame - 1) / 2
        size = self.end_frame - self.start_frame
        gt_size = best.end_frame - best.start_frame
        self.regression_targets = ((gt_centre - centre) / size, np.log(gt_size / size))


def _pair(value: float | Sequence[float]) -> tuple[float, float]:
    return (value, value) if isinstance(value, (int, float)) else tuple(value)


@DATASETS.register_module()
class SSNDataset(BaseDataset):
    """Arguments as MMAction2 0.24.1's ``SSNDataset`` (``train_cfg.ssn.assigner`` / ``sampler``,
    ``test_cfg.ssn.sampler.test_interval``); see the module docstring."""

    prefix_key = 'img'

    def __init__(self, ann_file: str, pipeline: Sequence[Any], train_cfg: Mapping[str, Any],
                 test_cfg: Mapping[str, Any], data_prefix: str | None, test_mode: bool = False,
                 filename_tmpl: str = 'img_{:05d}.jpg', start_index: int = 1, modality: str = 'RGB',
                 video_centric: bool = True, reg_normalize_constants: Any = None, body_segments: int = 5,
                 aug_segments: Sequence[int] = (2, 2), aug_ratio: float | Sequence[float] = (0.5, 0.5),
                 clip_len: int = 1, frame_interval: int = 1, filter_gt: bool = True,
                 use_regression: bool = True, verbose: bool = False, cfg_key: str = 'dataset') -> None:
        super().__init__(ann_file, pipeline, data_prefix=data_prefix, test_mode=test_mode,
                         start_index=start_index, modality=modality, cfg_key=cfg_key)
        self.assigner = dict(train_cfg['ssn']['assigner'])
        self.sampler = dict(train_cfg['ssn']['sampler'])
        self.test_interval = test_cfg['ssn']['sampler']['test_interval']
        self.filename_tmpl = filename_tmpl
        if filter_gt or not test_mode:
            self.video_infos = [info for info in self.video_infos if info['gts']]
        self.positive_pool: list[tuple[str, SSNInstance]] = []
        self.background_pool: list[tuple[str, SSNInstance]] = []
        self.incomplete_pool: list[tuple[str, SSNInstance]] = []
        self.construct_proposal_pools()
        self.reg_norm_consts = (self._reg_normalize_constants() if reg_normalize_constants is None
                                else np.asarray(reg_normalize_constants))
        self.video_centric = video_centric
        self.body_segments = body_segments
        self.aug_segments = tuple(aug_segments)
        self.aug_ratio = _pair(aug_ratio)
        from actionjax.models.losses.ssn_loss import sampler_counts  # the one reading of the proportions

        self.positive_per_video, self.background_per_video, self.incomplete_per_video = sampler_counts(
            self.sampler)
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.use_regression = use_regression
        self.verbose = verbose

    # -- annotations --------------------------------------------------------------------------

    def load_annotations(self) -> list[dict[str, Any]]:
        infos = []
        for video_id, num_frames, gt_rows, proposal_rows in load_localize_proposal_file(self.ann_file):
            gts = [SSNInstance(int(s), int(e), num_frames, label=int(c), best_iou=1.0)
                   for c, s, e in gt_rows if int(e) > int(s) and int(s) < num_frames]
            proposals = [SSNInstance(int(s), int(e), num_frames, label=int(c), best_iou=float(iou),
                                     overlap_self=float(overlap))
                         for c, iou, overlap, s, e in proposal_rows
                         if int(e) > int(s) and int(s) < num_frames]
            infos.append(dict(frame_dir=self._join(video_id), video_id=video_id, total_frames=num_frames,
                              gts=gts, proposals=proposals))
        return infos

    def get_positives(self, gts: list[SSNInstance], proposals: list[SSNInstance],
                      with_gt: bool = True) -> list[SSNInstance]:
        """Proposals above the positive IoU threshold (and the ground truths), with regression targets."""
        positives = [p for p in proposals if p.best_iou > self.assigner['positive_iou_threshold']]
        if with_gt:
            positives.extend(gts)
        for proposal in positives:
            proposal.compute_regression_targets(gts)
        return positives

    def get_negatives(self, proposals: list[SSNInstance]) -> tuple[list[SSNInstance], list[SSNInstance]]:
        """``(incompletes, backgrounds)``: low IoU but mostly inside a segment / no overlap, not tiny."""
        a = self.assigner
        incompletes, backgrounds = [], []
        for proposal in proposals:
            if (proposal.best_iou < a['incomplete_iou_threshold']
                    and proposal.overlap_self > a.get('incomplete_overlap_threshold', 0.7)):
                incompletes.append(proposal)
            elif (proposal.best_iou < a['background_iou_threshold']
                  and proposal.coverage > a.get('background_coverage_threshold', 0.01)):
                backgrounds.append(proposal)
        return incompletes, backgrounds

    def construct_proposal_pools(self) -> None:
        with_gt = self.sampler['add_gt_as_proposals']
        for info in self.video_infos:
            positives = self.get_positives(info['gts'], info['proposals'], with_gt)
            self.positive_pool.extend((info['video_id'], p) for p in positives)
            incompletes, backgrounds = self.get_negatives(info['proposals'])
            self.incomplete_pool.extend((info['video_id'], p) for p in incompletes)
            self.background_pool.extend((info['video_id'], p) for p in backgrounds)

    def _reg_normalize_constants(self) -> np.ndarray:
        """``[[mean_centre, mean_span], [std_centre, std_span]]`` of the positives' regression targets."""
        targets = [list(p.regression_targets) for info in self.video_infos
                   for p in self.get_positives(info['gts'], info['proposals'], with_gt=False)]
        return np.array((np.mean(targets, axis=0), np.std(targets, axis=0)))

    # -- training samples ----------------------------------------------------------------------

    def _video_centric_sampling(self, info: Mapping[str, Any], rng: np.random.Generator
                                ) -> list[tuple[Any, int]]:
        positives = self.get_positives(info['gts'], info['proposals'], self.sampler['add_gt_as_proposals'])
        incompletes, backgrounds = self.get_negatives(info['proposals'])

        def sample(kind: int, video_pool: list[SSNInstance], count: int,
                   dataset_pool: list[tuple[str, SSNInstance]]) -> list[tuple[Any, int]]:
            if not video_pool:  # none of this kind in the video: from the whole dataset, without repeats
                if len(dataset_pool) < count:
                    raise ValueError(f'SSNDataset: {self.ann_file} has {len(dataset_pool)} proposals of type '
                                     f'{kind} (0 positive, 1 incomplete, 2 background) in all, the sampler '
                                     f'takes {count} per video; check train_cfg.ssn.assigner / sampler')
                return [(dataset_pool[i], kind) for i in rng.choice(len(dataset_pool), count, replace=False)]
            picked = rng.choice(len(video_pool), count, replace=len(video_pool) < count)
            return [((info['video_id'], video_pool[i]), kind) for i in picked]

        return (sample(0, positives, self.positive_per_video, self.positive_pool)
                + sample(1, incompletes, self.incomplete_per_video, self.incomplete_pool)
                + sample(2, backgrounds, self.background_per_video, self.background_pool))

    def _random_sampling(self, rng: np.random.Generator) -> list[tuple[Any, int]]:
        out = []
        for kind, pool, count in ((0, self.positive_pool, self.positive_per_video),
                                  (1, self.incomplete_pool, self.incomplete_per_video),
                                  (2, self.background_pool, self.background_per_video)):
            out += [(pool[i], kind) for i in rng.choice(len(pool), count, replace=len(pool) < count)]
        return out

    def stage_scale_factors(self, proposal: SSNInstance, num_frames: int) -> tuple[float, float]:
        """How much of the starting / ending augmentation (``aug_ratio`` of the length) lies in the video."""
        clip = self.clip_len * self.frame_interval
        duration = proposal.end_frame - proposal.start_frame
        valid_start = max(0, proposal.start_frame - int(duration * self.aug_ratio[0]))
        valid_end = min(num_frames - clip + 1, proposal.end_frame - 1 + int(duration * self.aug_ratio[1]))
        start_length = proposal.start_frame - valid_start - clip
        end_length = (valid_end - proposal.end_frame + 1) - clip
        return ((start_length + clip + 1) / (duration * self.aug_ratio[0]),
                (end_length + clip + 1) / (duration * self.aug_ratio[1]))

    def prepare(self, index: int, rng: np.random.Generator | None = None) -> dict[str, Any] | None:
        results = self.get_info(index)
        if rng is not None:
            results['rng'] = rng
        if self.test_mode:
            results = self._test_inputs(results)
        else:
            results = self._train_inputs(results, self.video_infos[index], get_rng(results))
        return self.pipeline(results)

    def get_info(self, index: int) -> dict[str, Any]:
        results = super().get_info(index)
        results['filename_tmpl'] = self.filename_tmpl
        return results

    def _train_inputs(self, results: dict, info: Mapping[str, Any], rng: np.random.Generator) -> dict:
        if self.video_centric:
            proposals = self._video_centric_sampling(info, rng)
        else:
            proposals = self._random_sampling(rng)
        scale, labels, kinds, targets = [], [], [], []
        means, stds = self.reg_norm_consts
        for (_, proposal), kind in proposals:
            scale.append(self.stage_scale_factors(proposal, proposal.num_video_frames))
            labels.append(0 if kind == 2 else proposal.label)
            kinds.append(kind)
            target = proposal.regression_targets
            if kind == 0:
                target = ((target[0] - means[0]) / stds[0], (target[1] - means[1]) / stds[1])
            targets.append(target)
        results.update(out_proposals=proposals, reg_targets=np.array(targets, np.float32),
                       proposal_scale_factor=np.array(scale, np.float32), proposal_labels=np.array(labels),
                       proposal_type=np.array(kinds))
        return results

    def _test_inputs(self, results: dict) -> dict:
        proposals = list(results['proposals']) or [SSNInstance(0, results['total_frames'] - 1,
                                                               results['total_frames'])]
        num_frames = results['total_frames']
        clip = self.clip_len * self.frame_interval
        num_ticks = len(np.arange(0, num_frames - clip, self.test_interval))
        relative, ticks, scales = [], [], []
        for proposal in proposals:
            span = (proposal.start_frame / num_frames, proposal.end_frame / num_frames)
            duration = span[1] - span[0]
            start_aug, end_aug = duration * self.aug_ratio[0], duration * self.aug_ratio[1]
            real_start, real_end = max(0.0, span[0] - start_aug), min(1.0, span[1] + end_aug)
            relative.append(span)
            ticks.append((np.array((real_start, *span, real_end)) * num_ticks).astype(np.int32))
            scales.append(((span[0] - real_start) / start_aug, (real_end - span[1]) / end_aug))
        results.update(relative_proposal_list=np.array(relative, np.float32),
                       scale_factor_list=np.array(scales, np.float32),
                       proposal_tick_list=np.array(ticks, np.int32), reg_norm_consts=self.reg_norm_consts)
        return results

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        return self.prepare(index)

    def sample_path(self, index: int) -> str:
        return self.video_infos[index]['frame_dir']

