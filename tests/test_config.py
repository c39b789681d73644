"""Config: MMAction2/mmcv semantics of .py configs, _base_, _delete_, --cfg-options, dump."""

import json
import os
import subprocess
import sys

import pytest

from actionjax.config import Config, ConfigDict, ConfigError, DictAction, parse_value
from actionjax.registry import LOSSES

HERE = os.path.dirname(__file__)
FIX = os.path.join(HERE, 'fixtures', 'config')
MM = os.path.join(HERE, 'fixtures', 'mmaction2_configs')
REPO = os.path.dirname(HERE)


def test_three_level_base_chain_merges_dicts_and_replaces_lists():
    cfg = Config.fromfile(os.path.join(FIX, 'bases', 'level2_recipe.py'))
    # level0 -> level1 -> level2: every level contributes
    assert cfg.checkpoint_config == {'interval': 1, 'max_keep_ckpts': 3}
    assert cfg.model.backbone.depth == 50
    assert cfg.model.cls_head.num_classes == 101            # overridden by the child
    assert cfg.model.cls_head.in_channels == 2048           # kept from the base dict
    assert cfg.log_config == {'interval': 5, 'hooks': [{'type': 'TextLoggerHook'}]}
    assert cfg.workflow == [('train', 1), ('val', 1)]        # lists replace
    assert cfg.model.backbone.out_indices == (3,)            # tuples survive
    assert '_base_' not in cfg


def test_delete_replaces_the_base_dict():
    cfg = Config.fromfile(os.path.join(FIX, 'bases', 'level2_recipe.py'))
    assert cfg.optimizer == {'type': 'Adam', 'lr': 0.001}  # no momentum/weight_decay left, no _delete_


def test_helper_variables_are_keys_and_usable_in_pipelines():
    cfg = Config.fromfile(os.path.join(FIX, 'bases', 'level2_recipe.py'))
    assert cfg.img_norm_cfg.mean == [123.675, 116.28, 103.53]
    normalize = cfg.data.train.pipeline[2]
    assert normalize == {'type': 'Normalize', 'mean': [123.675, 116.28, 103.53],
                         'std': [58.395, 57.12, 57.375], 'to_bgr': False}


def test_attribute_and_item_access():
    cfg = Config.fromfile(os.path.join(FIX, 'bases', 'level2_recipe.py'))
    assert cfg.model.backbone.depth == cfg['model']['backbone']['depth']
    assert isinstance(cfg.data.train.pipeline[0], ConfigDict)
    with pytest.raises(AttributeError, match='did you mean depth'):
        _ = cfg.model.backbone.dpeth
    cfg.model.backbone.depth = 101
    assert cfg['model']['backbone']['depth'] == 101


def test_duplicate_keys_among_sibling_bases_is_an_error():
    with pytest.raises(ConfigError, match="duplicate key 'optimizer' in sibling bases"):
        Config.fromfile(os.path.join(FIX, 'dup', 'child.py'))


def test_base_cycle_is_an_error():
    with pytest.raises(ConfigError, match=r'_base_ cycle: a.py -> b.py -> a.py'):
        Config.fromfile(os.path.join(FIX, 'cycle', 'a.py'))


def test_missing_file_and_missing_base_name_the_file():
    with pytest.raises(ConfigError, match='config file not found: .*nope.py'):
        Config.fromfile(os.path.join(FIX, 'nope.py'))
    with pytest.raises(ConfigError, match=r'does_not_exist.py \(listed in _base_ of .*missing_base.py\)'):
        Config.fromfile(os.path.join(FIX, 'missing_base.py'))


def test_syntax_error_names_file_and_line():
    with pytest.raises(ConfigError, match=r'syntax error in config .*syntax_error.py, line 2'):
        Config.fromfile(os.path.join(FIX, 'syntax_error.py'))


def test_merging_a_dict_into_a_non_dict_base_value_names_the_key():
    with pytest.raises(ConfigError, match="'load_from' is a dict here but a NoneType in the base"):
        Config.fromfile(os.path.join(FIX, 'not_a_dict.py'))


def test_custom_imports_register_user_modules(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(FIX, 'custom'))
    cfg = Config.fromfile(os.path.join(FIX, 'custom_imports.py'))
    assert LOSSES.build(cfg.loss) == ('FixtureLoss', 2.0)


def test_custom_imports_failure_and_allow_failed_imports(capsys):
    with pytest.raises(ConfigError, match="custom_imports: cannot import 'no_such_module_xyz'"):
        Config.fromfile(os.path.join(FIX, 'custom_imports_bad.py'))
    cfg = Config.fromfile(os.path.join(FIX, 'custom_imports_allowed.py'))
    assert cfg.x == 1
    assert 'no_such_module_xyz' in capsys.readouterr().err


# --- overrides -------------------------------------------------------------------------------

@pytest.fixture
def recipe():
    return Config.fromfile(os.path.join(FIX, 'bases', 'level2_recipe.py'))


def test_merge_from_dict_nested_and_list_index(recipe):
    recipe.merge_from_dict({'model.backbone.depth': 18, 'data.train.pipeline.0.clip_len': 2,
                            'optimizer.lr': 0.5})
    assert recipe.model.backbone.depth == 18
    assert recipe.data.train.pipeline[0].clip_len == 2
    assert recipe.data.train.pipeline[0].num_clips == 3
    assert recipe.optimizer.lr == 0.5


def test_merge_from_dict_dict_value_merges_like_mmcv(recipe):
    recipe.merge_from_dict({'model.backbone': {'depth': 101}})
    assert recipe.model.backbone == {'type': 'ResNet', 'depth': 101, 'norm_eval': False, 'out_indices': (3,)}
    recipe.merge_from_dict({'model.backbone': {'_delete_': True, 'type': 'X'}})
    assert recipe.model.backbone == {'type': 'X'}


def test_override_adds_missing_keys_and_names_a_likely_typo(recipe, capsys):
    recipe.merge_from_dict({'model.backbone.dpeth': 1, 'model.backbone.norm_eval': True})
    assert recipe.model.backbone.dpeth == 1  # added, as mmengine does
    assert "did you mean 'model.backbone.depth'?" in capsys.readouterr().err
    recipe.merge_from_dict({'model.cls_head.brand_new': 2})
    assert 'did you mean' not in capsys.readouterr().err


def test_override_errors_name_the_key(recipe):
    with pytest.raises(ConfigError, match='model.backbone.depth is a int, not a dict'):
        recipe.merge_from_dict({'model.backbone.depth.x': 1})
    with pytest.raises(ConfigError, match='index 9 is out of range for data.train.pipeline'):
        recipe.merge_from_dict({'data.train.pipeline.9.clip_len': 1})
    with pytest.raises(ConfigError, match='data.train.pipeline is a list; index it with a number'):
        recipe.merge_from_dict({'data.train.pipeline.clip_len': 1})


def test_plus_prefix_adds_new_keys(recipe):
    recipe.merge_from_dict({'+model.backbone.frozen_stages': 2, '+custom.nested.key': 'v'})
    assert recipe.model.backbone.frozen_stages == 2
    assert recipe.custom.nested.key == 'v'


@pytest.mark.parametrize('text, value', [
    ('1', 1), ('-3', -3), ('0.5', 0.5), ('1e-4', 1e-4), ('true', True), ('False', False),
    ('None', None), ('none', 'none'), ('abc', 'abc'), ("'quoted'", 'quoted'),
    ('[1,2]', [1, 2]), ('(3,4)', (3, 4)), ('1,2,3', [1, 2, 3]), ('[1,(2,3),[4,5]]', [1, (2, 3), [4, 5]]),
    ('[a, b]', ['a', 'b']), ('(1,)', (1,)), ('[]', []), ('[true,None,0.1]', [True, None, 0.1]),
])
def test_value_parsing_table(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_cfg_options_action():
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = parser.parse_args(['--cfg-options', 'a.b=1', 'data.train.pipeline.0.clip_len=2',
                              "x='[1,2]'", 'y=(3,4)', 'z=None'])
    assert args.cfg_options == {'a.b': 1, 'data.train.pipeline.0.clip_len': 2, 'x': [1, 2],
                                'y': (3, 4), 'z': None}


# --- dump / pretty_text ------------------------------------------------------------------------

def test_dump_loads_back_to_the_same_dict(recipe, tmp_path):
    recipe.merge_from_dict({'+odd': {'not an identifier': 1, 'class': (1,)}})
    out = tmp_path / 'dumped.py'
    recipe.dump(out)
    again = Config.fromfile(out)
    assert again.to_dict() == recipe.to_dict()
    assert 'model = dict(' in recipe.pretty_text


def test_dump_rejects_values_that_are_not_literals(tmp_path):
    cfg = Config({'fn': object()})
    with pytest.raises(ConfigError, match='cannot be written as Python source|do not survive a dump'):
        cfg.dump(tmp_path / 'x.py')


# --- MMAction2's own configs load unchanged, exactly as mmcv / mmengine load them ---------------

@pytest.mark.parametrize('lib', ['mmcv', 'mmengine'])
def test_mmaction2_configs_load_as_the_reference_does(lib):
    with open(os.path.join(MM, f'golden_{lib}.json')) as f:
        golden = json.load(f)
    assert golden
    for rel_path, expected in golden.items():
        cfg = Config.fromfile(os.path.join(MM, rel_path))
        assert json.loads(json.dumps(cfg.to_dict())) == expected, rel_path


def test_cfg_options_that_add_keys_and_base_references_resolve_as_mmengine():
    with open(os.path.join(MM, 'golden_mmengine_options.json')) as f:
        golden = json.load(f)
    options = golden['options']
    cfg = Config.fromfile(os.path.join(MM, options['config']))
    cfg.merge_from_dict(options['options'])
    assert json.loads(json.dumps(cfg.to_dict())) == options['resolved']
    refs = golden['references']
    cfg = Config.fromfile(os.path.join(MM, refs['config']))
    assert json.loads(json.dumps(cfg.to_dict())) == refs['resolved']
    assert cfg.model.cls_head.num_classes == 100 and cfg.backbone_copy.depth == 50


def test_tsn_0x_recipe_has_the_expected_sections():
    cfg = Config.fromfile(os.path.join(MM, 'v0x', 'recognition', 'tsn',
                                       'tsn_r50_video_320p_1x1x3_100e_kinetics400_rgb.py'))
    for key in ('model', 'data', 'optimizer', 'optimizer_config', 'lr_config', 'total_epochs',
                'checkpoint_config', 'evaluation', 'log_config'):
        assert key in cfg, key
    assert cfg.data.train.pipeline[1] == {'type': 'SampleFrames', 'clip_len': 1, 'frame_interval': 1,
                                          'num_clips': 3}
    assert cfg.lr_config == {'policy': 'step', 'step': [40, 80]}


def test_train_help_lists_every_flag():
    out = subprocess.run([sys.executable, '-m', 'actionjax.train', '--help'], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    for flag in ('--config', '--work-dir', '--resume-from', '--auto-resume', '--load-from', '--seed',
                 '--deterministic', '--no-validate', '--cfg-options'):
        assert flag in out, flag


def test_train_reports_a_bad_override_in_one_line():
    config = os.path.join(FIX, 'bases', 'level2_recipe.py')
    proc = subprocess.run([sys.executable, '-m', 'actionjax.train', '--config', config,
                           '--cfg-options', 'model.backbone.depth.x=1'],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cfg-options 'model.backbone.depth.x'")
