"""Scripts as dashboards (``extension_language_mapping``): percent-format cells read as a
notebook, a script without markers as one cell, and the script's source never served."""

from __future__ import annotations

from pathlib import Path

import pytest

from carme.config import ConfigError
from carme_dashboards.appmode import app_settings
from carme_dashboards.scripts import notebook_from_script
from carme_dashboards.settings import script_mapping
from tests.dashboards.site import cells, dashboards, http

SCRIPT = '''"""A module docstring before the first cell."""
# %% [markdown]
# # Sales report
# Numbers *as of today*.

# %%
total = 6 * 7
print("total", total)

# %% tags=["skip-execution"]
print("never run")

#%% [md]
# done
'''


def test_percent_cells_become_a_notebook() -> None:
    nb = notebook_from_script(SCRIPT, "python")
    assert [c.cell_type for c in nb.cells] == ["code", "markdown", "code", "code", "markdown"]
    assert nb.cells[0].source == '"""A module docstring before the first cell."""'
    assert nb.cells[1].source == "# Sales report\nNumbers *as of today*."
    assert nb.cells[2].source == 'total = 6 * 7\nprint("total", total)'
    assert nb.cells[3].metadata["tags"] == ["skip-execution"]
    assert nb.cells[4].source == "done"
    assert nb.metadata["kernelspec"]["language"] == "python"


def test_a_script_without_markers_is_one_cell() -> None:
    nb = notebook_from_script("x = 1\n# a %% in a comment is no marker\nprint(x)\n", "python")
    assert [c.source for c in nb.cells] == ["x = 1\n# a %% in a comment is no marker\nprint(x)"]
    assert len(notebook_from_script("# %%\nx = 1\n", "javascript").cells) == 1  # not a '#' language


def test_the_mapping_is_checked_and_app_mode_maps_its_script() -> None:
    assert script_mapping({".PY": "python"}, "") == {".py": "python"}
    assert script_mapping({}, "app.py") == {".py": "python"}
    assert script_mapping({}, "app.ipynb") == {}
    for bad in ({"py": "python"}, {".py": ""}, {".ipynb": "python"}):
        with pytest.raises(ConfigError, match="extension_language_mapping"):
            script_mapping(bad, "")


def test_app_mode_takes_a_python_script(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "app.txt").write_text("")
    assert app_settings(str(tmp_path / "app.py"))[1]["dashboards.notebook"] == "app.py"
    with pytest.raises(ConfigError, match="not a notebook"):
        app_settings(str(tmp_path / "app.txt"))


def test_a_mapped_script_renders_cell_by_cell_and_its_source_is_never_served(root: Path) -> None:
    (root / "report.py").write_text(SCRIPT)
    (root / "helper.py").write_text("print('helper')\n")
    with dashboards(root, extension_language_mapping={".py": "python"}, file_denylist=[],
                    file_allowlist=[".*"]) as served, http(served) as client:
        page = client.get("dashboards/render/report.py")
        assert page.status_code == 200
        rendered = cells(page.text)
        assert "<h1" in rendered[1] and "Sales report" in rendered[1]
        assert "total 42" in rendered[2] and "never run" not in page.text
        assert "6 * 7" not in page.text  # sources stripped as for a notebook
        tree = client.get("dashboards/tree/").text
        assert "dashboards/render/report.py" in tree and "dashboards/render/helper.py" in tree
        assert client.get("dashboards/files/report.py").status_code == 404  # even with allow-all lists


def test_an_unmapped_script_is_no_dashboard(root: Path) -> None:
    (root / "report.py").write_text(SCRIPT)
    with dashboards(root) as served, http(served) as client:
        response = client.get("dashboards/render/report.py", follow_redirects=True)
        assert response.status_code == 404 and "total" not in response.text
        assert "report.py" not in client.get("dashboards/tree/").text


def test_app_mode_serves_its_script_at_the_root(root: Path) -> None:
    (root / "app.py").write_text("# %% [markdown]\n# # Hello\n# %%\nprint('from the script', 6 * 7)\n")
    with dashboards(root, app_mode=True, notebook="app.py") as served, http(served) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "Hello" in cells(page.text)[0] and "from the script 42" in cells(page.text)[1]
        assert client.get("dashboards/files/app.py").status_code == 404
