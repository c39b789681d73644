# BSN's Temporal Evaluation Module for 100 snippets of 400-d features
# (MMAction2 1.2.0: configs/_base_/models/bsn_tem.py).
model = dict(
    type='TEM',
    temporal_dim=100,
    boundary_ratio=0.1,
    tem_feat_dim=400,
    tem_hidden_dim=512,
    tem_match_threshold=0.5)
