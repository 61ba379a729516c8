"""The public model classes are importable from `tf_ada.models`."""


def test_models_package_exports_wavenet_and_ada():
    from tf_ada.models import ADA, WaveNet
    from tf_ada.models.ada import ADA as ada_class
    from tf_ada.models.wavenet import WaveNet as wavenet_class
    assert ADA is ada_class and WaveNet is wavenet_class


def test_importing_the_library_changes_no_logging_settings():
    """Issue 14: no global logging changes at import time (a user's own logging stays theirs)."""
    import subprocess
    import sys
    code = (
        "import logging, tensorflow as tf\n"
        "before = (tf.get_logger().level, logging.getLogger().level, len(logging.getLogger().handlers))\n"
        "import importlib, pkgutil, tf_ada\n"
        "skip = {'tf_ada.cli', 'tf_ada.__main__'}\n"
        "for m in pkgutil.walk_packages(tf_ada.__path__, 'tf_ada.'):\n"
        "    if m.name not in skip and not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "after = (tf.get_logger().level, logging.getLogger().level, len(logging.getLogger().handlers))\n"
        "assert before == after, (before, after)\n"
        "print('same', after)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "same" in out.stdout, out.stderr[-2000:]
