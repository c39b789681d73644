"""Registry: register classes and functions, custom names, duplicates, unknown names, nested builds."""

import pytest

from actionjax import registry
from actionjax.registry import Registry, RegistryError


@pytest.fixture
def reg():
    return Registry('THINGS')


def test_register_class_and_function(reg):
    @reg.register_module()
    class Conv:
        def __init__(self, width=1):
            self.width = width

    @reg.register_module
    def make_pool(size=2):
        return ('pool', size)

    assert reg.get('Conv') is Conv
    assert reg.build({'type': 'Conv', 'width': 3}).width == 3
    assert reg.build({'type': 'make_pool'}) == ('pool', 2)
    assert 'Conv' in reg and len(reg) == 2 and reg.keys() == ['Conv', 'make_pool']


def test_custom_names_and_direct_registration(reg):
    @reg.register_module('Fancy')
    def fn():
        return 1

    @reg.register_module(name='Other')
    class C:
        pass

    reg.register_module(name='Third', module=lambda: 3)
    assert reg.build({'type': 'Fancy'}) == 1
    assert isinstance(reg.build({'type': 'Other'}), C)
    assert reg.build({'type': 'Third'}) == 3
    assert 'fn' not in reg


def test_duplicates_are_errors_unless_forced(reg):
    @reg.register_module()
    def a():
        return 1

    with pytest.raises(RegistryError, match="'a' is already registered in THINGS.*force=True"):
        @reg.register_module()
        def a():  # noqa: F811
            return 2

    @reg.register_module(force=True)
    def a():  # noqa: F811
        return 3

    assert reg.build({'type': 'a'}) == 3


def test_unknown_name_suggests_closest_and_names_the_key(reg):
    for name in ('ResNet', 'ResNetTSM', 'ResNet3d', 'MobileNetV2'):
        reg.register_module(name=name, module=dict)
    with pytest.raises(RegistryError) as info:
        reg.build({'type': 'ResNte'}, key_path='model.backbone')
    message = str(info.value)
    assert "'ResNte' is not registered in THINGS" in message
    assert "config key 'model.backbone.type'" in message
    assert "'ResNet'" in message
    with pytest.raises(RegistryError, match="did you mean 'MobileNetV2'"):
        reg.get('mobilenet')


def test_build_does_not_mutate_cfg_and_fills_defaults(reg):
    reg.register_module(name='D', module=dict)
    cfg = {'type': 'D', 'a': 1}
    assert reg.build(cfg, b=2, a=5) == {'a': 1, 'b': 2}
    assert cfg == {'type': 'D', 'a': 1}


def test_build_errors_name_the_config_key(reg):
    reg.register_module(name='Head', module=lambda num_classes: num_classes)
    with pytest.raises(KeyError, match="config key 'model.cls_head' has no \"type\""):
        reg.build({'num_classes': 3}, key_path='model.cls_head')
    with pytest.raises(TypeError, match="building 'Head' from THINGS \\(config key 'model.cls_head'\\)"):
        reg.build({'type': 'Head', 'num_class': 3}, key_path='model.cls_head')
    with pytest.raises(TypeError, match='must be a dict'):
        reg.build(['Head'], key_path='model.cls_head')


def test_nested_builds(reg):
    heads = Registry('HEADS_T')

    @heads.register_module()
    class Head:
        def __init__(self, num_classes):
            self.num_classes = num_classes

    @reg.register_module()
    class Model:
        def __init__(self, head):
            self.head = heads.build(head, key_path='model.head')

    model = reg.build({'type': 'Model', 'head': {'type': 'Head', 'num_classes': 7}})
    assert model.head.num_classes == 7
    with pytest.raises(RegistryError, match="config key 'model.head.type'"):
        reg.build({'type': 'Model', 'head': {'type': 'Hed'}})


def test_the_mmaction2_registries_exist():
    for name in ('BACKBONES', 'NECKS', 'HEADS', 'RECOGNIZERS', 'LOCALIZERS', 'LOSSES', 'OPTIMIZERS',
                 'OPTIMIZER_BUILDERS', 'LR_SCHEDULES', 'DATASETS', 'PIPELINES'):
        assert isinstance(getattr(registry, name), Registry)
        assert getattr(registry, name).name == name


def test_every_registry_is_complete_on_import_alone():
    """A fresh interpreter that imports only actionjax.registry sees every built-in entry."""
    import subprocess
    import sys

    code = '\n'.join([
        'from actionjax import registry as R',
        "wanted = {'BACKBONES': 'ResNet', 'HEADS': 'TSNHead', 'RECOGNIZERS': 'Recognizer2D',",
        "          'LOSSES': 'CrossEntropyLoss', 'OPTIMIZERS': 'SGD',",
        "          'OPTIMIZER_BUILDERS': 'TSMOptimizerConstructor', 'LR_SCHEDULES': 'Step',",
        "          'DATASETS': 'VideoDataset', 'PIPELINES': 'SampleFrames', 'METRICS': 'AccMetric'}",
        'for name, entry in wanted.items():',
        '    assert entry in getattr(R, name), (name, entry)',
        "print('ok')"])
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == 'ok', out.stderr
