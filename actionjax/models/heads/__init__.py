"""Classification heads, registered in ``HEADS`` on import."""

from actionjax.models.heads.base import BaseHead, average_clip, top_k_accuracy
from actionjax.models.heads.consensus import AvgConsensus
from actionjax.models.heads.i3d_head import I3DHead
from actionjax.models.heads.mvit_head import MViTHead
from actionjax.models.heads.slowfast_head import SlowFastHead
from actionjax.models.heads.ssn_head import SSNHead
from actionjax.models.heads.timesformer_head import TimeSformerHead
from actionjax.models.heads.tsm_head import TSMHead
from actionjax.models.heads.tsn_head import TSNHead
from actionjax.models.heads.uniformer_head import UniFormerHead
from actionjax.models.heads.x3d_head import X3DHead

__all__ = ['AvgConsensus', 'BaseHead', 'I3DHead', 'MViTHead', 'SlowFastHead', 'SSNHead', 'TSMHead', 'TSNHead',
           'TimeSformerHead', 'UniFormerHead', 'X3DHead', 'average_clip', 'top_k_accuracy']
