"""The public model classes are importable from `tf_ada.models`."""


def test_models_package_exports_wavenet_and_ada():
    from tf_ada.models import ADA, WaveNet
    from tf_ada.models.ada import ADA as ada_class
    from tf_ada.models.wavenet import WaveNet as wavenet_class
    assert ADA is ada_class and WaveNet is wavenet_class
