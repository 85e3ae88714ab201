"""A HelpersError in a notebook cell is one line (with the way to the full traceback); others are untouched."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from helpers import notebook_errors


@pytest.fixture
def shell():
    instance = InteractiveShell.instance()
    instance.run_line_magic("colors", "nocolor")
    notebook_errors.install(instance)
    yield instance
    notebook_errors.show_full_tracebacks(False)
    instance.set_custom_exc((), None)
    InteractiveShell.clear_instance()


def test_a_helpers_error_is_one_line(shell, capsys):
    shell.run_cell("import helpers\nhelpers.imagenet.class_index_of('tigr cat')")
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].startswith("ClassIndexError: ") and "tiger cat" in lines[0], out
    assert lines[1] == notebook_errors.HINT and len(lines) == 2, out
    assert "Traceback" not in out and "site-packages" not in out


def test_tb_shows_the_full_traceback_afterwards(shell, capsys):
    shell.run_cell("import helpers\nhelpers.imagenet.class_index_of('tigr cat')")
    capsys.readouterr()
    shell.run_line_magic("tb", "")
    out = capsys.readouterr().out
    assert "class_index_of" in out and "imagenet.py" in out and "ClassIndexError" in out


def test_full_tracebacks_can_be_switched_back_on(shell, capsys):
    notebook_errors.show_full_tracebacks()
    shell.run_cell("import helpers\nhelpers.imagenet.class_index_of('tigr cat')")
    out = capsys.readouterr().out
    assert "imagenet.py" in out and notebook_errors.HINT not in out


def test_other_errors_keep_the_normal_display(shell, capsys):
    shell.run_cell("1 / 0")
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out and notebook_errors.HINT not in out and "----> 1" in out


def test_import_installs_nothing_outside_ipython():
    assert notebook_errors.install() is False  # pytest runs without an IPython shell


def test_in_a_real_kernel_import_helpers_is_enough(tmp_path):
    """What a learner sees in Jupyter: the error output of the cell holds the one line and the hint."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import helpers"),
        nbformat.v4.new_code_cell("helpers.imagenet.class_index_of('tigr cat')"),
    ]
    NotebookClient(notebook, timeout=120, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}).execute()
    (error,) = [o for o in notebook.cells[1].outputs if o.output_type == "error"]
    assert error.ename == "ClassIndexError" and "tiger cat" in error.evalue
    assert error.traceback == [f"ClassIndexError: {error.evalue}", notebook_errors.HINT]
