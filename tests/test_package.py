"""The package stays light to import and its lazy public names all resolve."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light_and_names_resolve():
    code = (
        "import sys, convscope\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
        "names = [n for n in convscope.__all__ if n != '__version__']\n"
        "for n in names:\n    assert getattr(convscope, n) is not None, n\n"
        "assert callable(convscope.activations) and callable(convscope.render_activation)\n"
        "assert convscope.render.__name__ == 'convscope.render'\n"
        "print('OK', len(names))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK")


def test_unknown_attribute_raises_attribute_error():
    import convscope

    try:
        convscope.no_such_thing
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
